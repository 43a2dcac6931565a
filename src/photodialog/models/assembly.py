"""Building the model from a ``ModelConfig``: the ``tiny`` and ``paper`` presets.

Both presets go through the same loading code: ``paper`` reads the three published
checkpoints (hub ids or local folders); ``tiny`` first saves random small parts in those same
layouts (``photodialog.models.tiny``) in a base folder, then reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from photodialog.config import ModelConfig
from photodialog.data.loading import dataset_root
from photodialog.data.photos import load_photo
from photodialog.data.synth.attributes import KINDS, all_triples
from photodialog.data.synth.render import render_photo
from photodialog.data.synth.world import load_world
from photodialog.models.perceptron import photo_to_tensor
from photodialog.errors import DataError, UserError
from photodialog.models.adapters import set_training_mode
from photodialog.models.dialogue_model import JointSettings, PhotoDialogModel
from photodialog.models.image_generator import ImageGenerator, image_to_tensor
from photodialog.models.pretrained import load_blip2_parts, load_diffusion, load_llm
from photodialog.models.perceptron import ImagePerceptron
from photodialog.models.tiny import save_tiny_diffusion, save_tiny_parts
from photodialog.models.tokenizers import add_photo_tokens


@dataclass
class PartSources:
    """Where each pretrained part is read from (hub id or folder)."""

    llm: str
    blip2: str
    diffusion: str


def part_sources(config: ModelConfig, base_dir: str | Path | None = None) -> PartSources:
    """Where the three parts load from: the hub ids or folders of the config (paper preset), or the
    run's ``base_dir`` with ``llm/``, ``blip2/`` and ``diffusion/`` (tiny preset; ``UserError`` without it).
    """
    if config.preset == "paper":
        return PartSources(config.llm, config.blip2, config.diffusion)
    if base_dir is None:
        raise UserError("the tiny preset needs the folder of its saved base parts (made by `photodialog train`)")
    base = Path(base_dir)
    return PartSources(str(base / "llm"), str(base / "blip2"), str(base / "diffusion"))


def ensure_tiny_base(config: ModelConfig, base_dir: str | Path, texts: Iterable[str] | None, seed: int,
                     photos: Iterable[str] | None = None, progress: bool = False, data_path: str = "") -> Path:
    """Create the tiny preset's base parts in ``base_dir`` unless already there.

    ``texts`` train the tokenizers; with ``model.tiny.latent`` and the generator among the parts,
    ``photos`` (training photo files) train the VAE; with ``model.tiny.vision_pretrain_steps`` the
    perceptron is first pretrained on the training photos of the synthetic world at ``data_path``.
    Raises ``UserError`` when any of them is needed and missing.
    """
    base = Path(base_dir)
    if (base / "llm" / "config.json").is_file():
        if "generator" in config.parts and not (base / "diffusion").is_dir():
            # A start that brought only the text side (an export of an LLM + perceptron run, the
            # bundled start): the generator comes from model.tiny.diffusion_source.
            if config.tiny.diffusion_source == "random":
                raise UserError("the pretrained start has no image generator and model.tiny.diffusion_source is random: "
                                "set it to bundled (the one photodialog ships) or to a Stable Diffusion folder")
            save_tiny_diffusion(base / "diffusion", [], config.tiny, latent=config.tiny.latent)
        return base
    texts = list(texts or [])
    if not texts:
        raise UserError("the tiny preset trains its tokenizers on the dataset's text, but no text was given")
    pixels = None
    if config.tiny.latent and config.tiny.vae_source == "train" and "generator" in config.parts:
        pixels = _photo_tensor(list(photos or []), config.tiny.image_size)
    labelled = (_labelled_world_photos(data_path, config.tiny.vision_image_size, config.tiny.vision_pretrain_photos)
                if config.tiny.vision_pretrain_steps else None)
    tmp = base.with_name(base.name + ".tmp")
    save_tiny_parts(tmp, texts, config.tiny, seed=seed, photos=pixels, labelled_photos=labelled, progress=progress)
    tmp.rename(base)
    return base


# Seeds the perceptron's rendered photos apart from every dialogue's photo (those use [seed, index]).
PERCEPTRON_PHOTO_STREAM = 0x50455243


def _labelled_world_photos(data_path: str, size: int, rendered: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled photos of the synthetic world at ``data_path`` at the vision tower's ``size``, and
    their (object, colour, scene) class indices: what ``model.tiny.vision_pretrain_steps`` trains on.
    ``rendered`` = 0: the world's training photos; N > 0: N new photos drawn by the world's renderer
    from its seed (a stream of its own, apart from every dialogue's photo) on triples drawn uniformly
    from every combination: like BLIP-2's corpus, the perceptron's is independent of the dialogues,
    whose held-out combinations stay unseen by the LLM and the generator. (Drawn from the seen
    combinations only, the shipped start named the object after 97% of seen test photos and 66% of
    held-out ones.)"""
    try:
        world = load_world(dataset_root(data_path))
    except DataError as err:
        raise UserError(f"model.tiny.vision_pretrain_steps pretrains the perceptron on a synthetic world's labelled photos: {err}") from None
    orders = (list(world.objects), list(world.colours), list(world.scenes))

    def label(triple) -> list[int]:
        return [order.index(getattr(triple, kind)) for order, kind in zip(orders, KINDS)]

    if not rendered:
        photos = world.photos("train")
        pixels = torch.stack([photo_to_tensor(load_photo(p.path), size) for p in photos])
        return pixels, torch.tensor([label(p.triple) for p in photos])
    rng = np.random.default_rng([world.seed, PERCEPTRON_PHOTO_STREAM])
    triples = all_triples()
    drawn = [triples[i] for i in rng.integers(0, len(triples), rendered)]
    pixels = torch.stack([photo_to_tensor(render_photo(t, rng, world.image_size), size) for t in drawn])
    return pixels, torch.tensor([label(t) for t in drawn])


def _photo_tensor(files: list[str], size: int) -> torch.Tensor:
    """Training photos as one [N, 3, size, size] tensor in [-1, 1] (for the tiny VAE); unreadable ones skipped."""
    tensors = []
    for file in dict.fromkeys(files):  # each photo once, in first-seen order
        try:
            tensors.append(image_to_tensor(load_photo(file), size))
        except (DataError, OSError):
            continue
    if not tensors:
        raise UserError("model.tiny.latent needs training photos to train the tiny VAE, and none could be read; "
                        "check data.path, or set model.tiny.latent=false")
    return torch.stack(tensors)


def build_model(config: ModelConfig, sources: PartSources) -> PhotoDialogModel:
    """Load the parts named in ``config.parts``, add the photo tokens, set what trains."""
    llm = tokenizer = perceptron = generator = None
    if "llm" in config.parts:
        llm, tokenizer = load_llm(sources.llm, config.dtype)
        add_photo_tokens(tokenizer)
        if llm.get_input_embeddings().weight.shape[0] != len(tokenizer):
            llm.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        if config.gradient_checkpointing:
            llm.gradient_checkpointing_enable()
            llm.config.use_cache = False
    if "perceptron" in config.parts and llm is not None:
        vision, qformer, queries = load_blip2_parts(sources.blip2, config.dtype)
        perceptron = ImagePerceptron(vision, qformer, queries, llm.config.hidden_size)
    if "generator" in config.parts:
        text_encoder, unet, vae, scheduler, sd_tokenizer = load_diffusion(sources.diffusion, config.dtype)
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        generator = ImageGenerator(text_encoder, unet, scheduler, sd_tokenizer, vae=vae, image_size=config.image_size or None,
                                   snr_gamma=config.snr_gamma)
    settings = JointSettings(
        bridge=config.bridge, pooling=config.pooling, caption_source=config.caption_source, gumbel_noise=config.gumbel_noise,
        image_loss_repeats=config.image_loss_repeats, caption_dropout=config.caption_dropout,
        own_caption_path=config.own_caption_path, own_caption_weight=config.own_caption_weight,
    )
    model = PhotoDialogModel(llm, tokenizer, perceptron, generator, settings)
    apply_training_modes(model, config)
    return model


def apply_training_modes(model: PhotoDialogModel, config: ModelConfig) -> None:
    """Freeze, wrap with LoRA or fully train each part as ``config.trainable`` says (in place).

    The perceptron's projection always trains (it is new); trainable weights are kept in float32
    whatever the frozen parts' dtype.
    """
    for part, module in model.part_modules().items():
        mode = getattr(config.trainable, part)
        if part == "perceptron":
            # The projection into the LLM is new (random), so it trains even when ViT and Q-Former are frozen.
            for name in ("vision_model", "qformer"):
                set_training_mode(name, getattr(module, name), mode, config.lora)
            module.query_tokens.requires_grad_(mode == "full")
            module.projection.requires_grad_(True)
        else:
            set_training_mode(part, module, mode, config.lora)
    # Trainable weights stay float32 whatever the frozen parts' dtype (optimizer state and updates).
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()

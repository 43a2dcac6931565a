"""The ``tiny`` preset: random small parts, saved in the three published folder layouts.

``save_tiny_parts`` trains the two tokenizers on the given texts, builds every part from small
configs with random weights and writes::

    OUT/llm/        a Llama causal LM folder with its tokenizer
    OUT/blip2/      a Blip2ForConditionalGeneration folder (with a tiny OPT, as published)
    OUT/diffusion/  a Stable Diffusion folder: text_encoder/ tokenizer/ unet/ scheduler/ [vae/]

so that the ``paper`` loading code (``photodialog.models.pretrained``) reads them unchanged. With
``sizes.latent`` false (the default) there is no ``vae/`` and the tiny UNet diffuses in pixel
space; with it true, a small VAE is first trained on the given training photos (a random VAE
encodes nothing meaningful) and the UNet diffuses in its latent space, as Stable Diffusion does.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import torch

from photodialog.config import TinySizes
from photodialog.errors import ConfigError
from photodialog.files import use_umask_modes
from photodialog.models.tiny_generator import copy_diffusion, unet_attention_flags
from photodialog.models.tiny_vae import BUNDLED_VAE, tiny_vae_model, train_vae
from photodialog.models.tokenizers import train_clip_tokenizer, train_llama_tokenizer, train_llm_tokenizer

log = logging.getLogger(__name__)
CAPTION_MAX_TOKENS = 32  # the tiny CLIP text encoder's positions (SD's is 77)


def save_tiny_parts(out: str | Path, texts: Iterable[str], sizes: TinySizes, *, seed: int = 0, latent: bool | None = None,
                    photos=None, labelled_photos=None, progress: bool = False) -> Path:
    """Build and save all tiny parts under ``out``; returns ``out``. ``labelled_photos`` (see
    ``save_tiny_blip2``) pretrain the perceptron when ``sizes.vision_pretrain_steps`` asks for it."""
    out = Path(out)
    texts = list(texts)
    torch.manual_seed(seed)
    save_tiny_llm(out / "llm", texts, sizes)
    save_tiny_blip2(out / "blip2", sizes, labelled_photos)
    latent = sizes.latent if latent is None else latent
    save_tiny_diffusion(out / "diffusion", texts, sizes, latent=latent, photos=photos, progress=progress)
    use_umask_modes(out)  # save_pretrained's safetensors files are owner-only
    return out


def save_tiny_llm(out: Path, texts: list[str], sizes: TinySizes) -> None:
    """Train a tiny tokenizer on ``texts`` and save a random causal LM (Llama or GPT-2 layout, ``sizes``)
    with it to ``out`` in the ``from_pretrained`` layout.
    """
    if sizes.llm_tokenizer == "llama_bpe":
        tokenizer = train_llama_tokenizer(texts, sizes.llm_vocab)
    else:
        tokenizer = train_llm_tokenizer(texts, sizes.llm_vocab)
    model = _tiny_gpt2(tokenizer, sizes) if sizes.llm_architecture == "gpt2" else _tiny_llama(tokenizer, sizes)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _tiny_gpt2(tokenizer, sizes: TinySizes):
    """DialoGPT's layout (GPT-2) at tiny size, for the Divter baseline."""
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=sizes.llm_hidden, n_layer=sizes.llm_layers, n_head=sizes.llm_heads,
        n_positions=1024, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    return GPT2LMHeadModel(config)


def _tiny_llama(tokenizer, sizes: TinySizes):
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=sizes.llm_hidden, intermediate_size=sizes.llm_hidden * 3,
        num_hidden_layers=sizes.llm_layers, num_attention_heads=sizes.llm_heads, num_key_value_heads=sizes.llm_heads,
        max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=sizes.llm_tie_embeddings,
    )
    return LlamaForCausalLM(config)


def save_tiny_blip2(out: Path, sizes: TinySizes, labelled_photos=None) -> None:
    """Save a BLIP-2 (vision model, Q-Former, query tokens; a stub OPT) of ``sizes`` to ``out``: random,
    or, with ``sizes.vision_pretrain_steps`` and ``labelled_photos`` (a [N, 3, S, S] tensor at the
    vision tower's size, normalised as ``perceptron.photo_to_tensor`` does, and [N, 3] class indices of
    object, colour and scene), pretrained first as their classifier (``pretrain_perceptron``)."""
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    config = Blip2Config(
        vision_config=dict(
            hidden_size=sizes.vision_hidden, intermediate_size=sizes.vision_hidden * 4, num_hidden_layers=sizes.vision_layers,
            num_attention_heads=4, image_size=sizes.vision_image_size, patch_size=sizes.vision_patch,
        ),
        qformer_config=dict(
            hidden_size=sizes.qformer_hidden, intermediate_size=sizes.qformer_hidden * 4, num_hidden_layers=sizes.qformer_layers,
            num_attention_heads=4, encoder_hidden_size=sizes.vision_hidden, vocab_size=128, max_position_embeddings=64,
        ),
        text_config=dict(model_type="opt", vocab_size=64, hidden_size=32, ffn_dim=64, num_hidden_layers=1, num_attention_heads=2, word_embed_proj_dim=32),
        num_query_tokens=sizes.num_query_tokens,
    )
    model = Blip2ForConditionalGeneration(config)
    torch.nn.init.normal_(model.query_tokens, std=0.02)  # BLIP-2 initialises them so; zeros make all queries equal
    if sizes.vision_pretrain_steps and labelled_photos is not None:
        accuracy = pretrain_perceptron(model, *labelled_photos, steps=sizes.vision_pretrain_steps)
        log.info("perceptron pretrained for %d steps on %d labelled photos: all attributes right on %.0f%% of its last batch",
                 sizes.vision_pretrain_steps, labelled_photos[0].shape[0], 100 * accuracy)
    model.save_pretrained(out)


def pretrain_perceptron(model, pixels: torch.Tensor, labels: torch.Tensor, *, steps: int, batch: int = 64,
                        lr: float = 1e-3) -> float:
    """Train a BLIP-2's vision model, Q-Former and query tokens in place as a classifier of ``labels``
    ([N, K] class indices, one column per attribute) from ``pixels`` ([N, 3, S, S]): a linear head per
    attribute on the mean of the query outputs, cross-entropy summed, AdamW with the learning rate
    annealed to 0 over ``steps`` on a cosine, ``steps`` batches drawn with torch's global generator
    (seeded by the caller). The cosine is what reaches the objects: at a constant rate the tiny ViT
    named the object of 92% of a world's test photos after 3,000-4,000 steps and stayed there; annealed
    over 8,000 steps, 97.5-98% from step 5,500 on (40,000 rendered photos, docs/performance.md). The heads are thrown away: what stays is a
    perceptron whose query outputs say what a photo shows, as BLIP-2's pretraining leaves its own.
    Returns the last batch's accuracy (all attributes right, 0-1)."""
    classes = [int(labels[:, k].max()) + 1 for k in range(labels.shape[1])]
    width = model.config.qformer_config.hidden_size
    heads = torch.nn.ModuleList(torch.nn.Linear(width, n) for n in classes)
    params = [*model.vision_model.parameters(), *model.qformer.parameters(), model.query_tokens, *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    accuracy, recent = 0.0, []
    for step in range(1, steps + 1):
        index = torch.randint(0, pixels.shape[0], (min(batch, pixels.shape[0]),))
        image = model.vision_model(pixel_values=pixels[index]).last_hidden_state
        queries = model.query_tokens.expand(image.shape[0], -1, -1)
        pooled = model.qformer(query_embeds=queries, encoder_hidden_states=image).last_hidden_state.mean(1)
        logits = [head(pooled) for head in heads]
        loss = sum(torch.nn.functional.cross_entropy(lg, labels[index, k]) for k, lg in enumerate(logits))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            accuracy = float(torch.stack([lg.argmax(1) == labels[index, k] for k, lg in enumerate(logits)]).all(0).float().mean())
        recent.append(accuracy)
        if step % 500 == 0 or step == steps:  # minutes of work: say where it is (train.log and the terminal)
            log.info("perceptron pretraining: step %d / %d, all attributes right on %.1f%% of the last %d batches' photos",
                     step, steps, 100 * sum(recent) / len(recent), len(recent))
            recent = []
    model.eval()
    return accuracy


def save_tiny_diffusion(out: Path, texts: list[str], sizes: TinySizes, *, latent: bool, photos=None, progress: bool = False) -> None:
    """Save a random Stable Diffusion folder (tokenizer trained on ``texts``, CLIP text encoder, UNet,
    scheduler, and a VAE when ``latent``) of ``sizes`` to ``out``; with ``sizes.diffusion_source``
    other than ``random``, copy that pretrained folder instead (``models/tiny_generator.py``).

    With ``latent`` and ``photos`` (a [N, 3, S, S] tensor in [-1, 1] of training photos at the
    generator's size), the VAE is trained on them first (``models/tiny_vae.py``); without photos it
    stays random (for tests of the folder layout only).
    """
    if sizes.diffusion_source != "random":  # a pretrained generator: its own tokenizer, weights and VAE
        copy_diffusion(out, sizes, latent=latent)
        return
    # the Hugging Face stack is slow to import: only this path needs it
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = train_clip_tokenizer(texts, sizes.sd_vocab, CAPTION_MAX_TOKENS)
    tokenizer.save_pretrained(out / "tokenizer")
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=sizes.text_encoder_hidden, intermediate_size=sizes.text_encoder_hidden * 4,
        num_hidden_layers=sizes.text_encoder_layers, num_attention_heads=4, max_position_embeddings=CAPTION_MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    CLIPTextModel(text_config).save_pretrained(out / "text_encoder")
    channels = list(sizes.unet_channels)
    attention = unet_attention_flags(sizes)
    factor = 2 ** (len(sizes.vae_channels) - 1) if latent else 1
    in_channels = sizes.latent_channels if latent else 3
    UNet2DConditionModel(
        sample_size=sizes.image_size // factor, in_channels=in_channels, out_channels=in_channels,
        block_out_channels=channels, layers_per_block=1, norm_num_groups=8,
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        cross_attention_dim=sizes.text_encoder_hidden, attention_head_dim=8,
        addition_embed_type=sizes.unet_addition_embed_type or None, addition_embed_type_num_heads=4,
    ).save_pretrained(out / "unet")
    # DDPM at small sizes trains best with the cosine schedule; SD keeps its own.
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=sizes.prediction_type, clip_sample=not latent).save_pretrained(out / "scheduler")
    components = {"text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                  "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDPMScheduler"]}
    if latent:
        _save_tiny_vae(out / "vae", sizes, photos, progress)
        components["vae"] = ["diffusers", "AutoencoderKL"]
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": _diffusers_version(), **components,
             "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False}
    (out / "model_index.json").write_text(json.dumps(index, indent=2))


def _save_tiny_vae(out: Path, sizes: TinySizes, photos, progress: bool) -> None:
    if sizes.vae_source != "train":
        _copy_vae(out, sizes)
        return
    vae = tiny_vae_model(sizes)
    if photos is not None and sizes.vae_train_steps > 0:
        stats = train_vae(vae, photos, steps=sizes.vae_train_steps, progress=progress)
        vae.save_pretrained(out)
        # How well it reconstructs its training photos: the ceiling of every photo the generator draws.
        (out / "training.json").write_text(json.dumps({"photos": int(photos.shape[0]), "steps": sizes.vae_train_steps, **stats}, indent=1))
        return
    vae.save_pretrained(out)


def _copy_vae(out: Path, sizes: TinySizes) -> None:
    """The bundled VAE (or a given folder) as the base's ``vae/``, after checking it fits ``sizes``."""
    source = BUNDLED_VAE if sizes.vae_source == "bundled" else Path(sizes.vae_source).expanduser()
    config_file = source / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"model.tiny.vae_source: {source} is not an AutoencoderKL folder (no config.json); "
                          "use train, bundled, or a folder saved by diffusers")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    expected = {"latent_channels": sizes.latent_channels, "block_out_channels": list(sizes.vae_channels), "sample_size": sizes.image_size}
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise ConfigError(f"model.tiny.vae_source: the VAE in {source} has {wrong}, but model.tiny asks for "
                          f"{ {k: expected[k] for k in wrong} }; set model.tiny to match it, or use vae_source=train")
    shutil.copytree(source, out)


def _diffusers_version() -> str:
    # the Hugging Face stack is slow to import: only this path needs it
    import diffusers

    return diffusers.__version__

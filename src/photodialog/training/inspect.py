"""One training step, taken apart: how much gradient the image loss alone puts on each part.

With the end-to-end bridge, ``L_v`` reaches the LLM (through the bridge and STGS) and the
perceptron (whose photo embeddings shape the caption logits); with ``bridge=none`` it stops at
the text encoder. ``gradient_report`` measures that on a real batch with photo-sharing responses.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from photodialog.config import RunConfig
from photodialog.data.samples import build_samples
from photodialog.errors import UserError
from photodialog.system import build_system
from photodialog.training.data import load_split, tokenizer_texts, training_dataset, training_photos
from photodialog.training.micro_batch import fixed_micro_batch

REPORTED_PARTS = ("llm", "perceptron", "unet", "text_encoder")


def gradient_report(config: RunConfig) -> dict:
    """``{"image_loss_grad_norm": {part: norm}, "text_loss", "image_loss", ...}`` for one step."""
    torch.manual_seed(config.train.seed)
    dialogues, _ = load_split(config.data, config.data.train_split)
    with tempfile.TemporaryDirectory() as tmp:
        system = build_system(config, Path(tmp), tokenizer_texts(dialogues), training_photos(dialogues))  # tiny: base parts go there
        micro = fixed_micro_batch(config)  # a number, also for train.micro_batch_size=auto
        samples = _photo_samples_first(build_samples(dialogues), micro)
        dataset = training_dataset(samples, system.formatter)
        batch = system.make_batch([dataset[i] for i in range(min(len(dataset), micro))])
        model = system.model.train()
        out = model(batch, tau=config.train.tau_start, alpha=config.train.alpha, text_weight=config.train.text_loss_weight)
        # with own_caption_path=llm_only L_v has two parts: gold captions (generator), own captions (LLM)
        image = out.image_loss if out.own_caption_loss is None else out.image_loss + out.own_caption_loss
        norms = _image_loss_norms(model, image)
    return {
        "image_loss_grad_norm": norms,
        "text_loss": None if out.text_loss is None else float(out.text_loss.detach()),
        "image_loss": None if out.image_loss is None else float(out.image_loss.detach()),
        "bridge": config.model.bridge,
        "caption_source": config.model.caption_source,
        "own_caption_path": config.model.own_caption_path,
        "tau": config.train.tau_start,
        "trainable": {part: _trainable(model, part) for part in REPORTED_PARTS},
        "batch": {"samples": batch.size, "photos_to_draw": out.stats.get("image_targets", 0),
                  # L_v reaches the perceptron only through photos in the context of a reply that draws one
                  "context_photos_of_drawing_replies": sum(_context_photos(s) for s in samples[:batch.size] if s.response.shares_photo)},
    }


def _photo_samples_first(samples, count: int):
    """A batch that certainly has responses sharing a photo (half of it), so L_v exists; those with
    photos in their context first, so that L_v has a path back to the perceptron where the data has one."""
    sharing = sorted((s for s in samples if s.response.shares_photo), key=lambda s: not _context_photos(s))
    if not sharing:
        raise UserError("no response in this dataset shares a photo, so there is no image loss to inspect")
    others = [s for s in samples if not s.response.shares_photo]
    half = max(1, count // 2)
    return sharing[:half] + others[: count - half]


def _trainable(model, part: str) -> bool:
    module = model.part_modules().get(part)
    return module is not None and any(p.requires_grad for p in module.parameters())


def _image_loss_norms(model, image_loss) -> dict[str, float]:
    """Norm of d L_v / d theta over each part's trainable parameters (0.0 when frozen or absent)."""
    norms = {part: 0.0 for part in REPORTED_PARTS}
    if image_loss is None:
        return norms
    modules = model.part_modules()
    for part in REPORTED_PARTS:
        params = [p for p in modules[part].parameters() if p.requires_grad] if part in modules else []
        if not params:
            continue
        grads = torch.autograd.grad(image_loss, params, retain_graph=True, allow_unused=True)
        squares = [g.float().pow(2).sum() for g in grads if g is not None]
        norms[part] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return norms


def _context_photos(sample) -> int:
    return sum(len(turn.photos) for turn in sample.context)

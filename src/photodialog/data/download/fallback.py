"""Redraw the photos that could not be fetched, from their captions (paper §3.1.1).

Many of the datasets' photo URLs are dead. As in the paper, each missing photo is generated
by a text-to-image model from its caption (the paper used
``stabilityai/stable-diffusion-3-medium-diffusers``), saved under the photo's own stem, and
marked ``generated`` in the manifest, with the model and the prompt, so that an evaluation can
tell real photos from drawn ones.

Each photo gets its own seed (the base seed plus a hash of its stem): a photo's image does not
depend on which other photos failed or in which order they were drawn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from photodialog.data.download.images import ImageRejected, check_image, place_photo, temp_path_for
from photodialog.data.download.manifest import GENERATED, ManifestEntry
from photodialog.data.download.photo_sources import GENERATOR
from photodialog.devices import resolve_device
from photodialog.errors import UserError


@dataclass(frozen=True)
class FallbackOptions:
    """Which model redraws missing photos, and how."""

    model: str  # a diffusers text-to-image pipeline: hub id or local folder
    steps: int = 28
    seed: int = 0
    device: str = "auto"  # auto: cuda, else mps, else cpu
    size: int | None = None  # square side in pixels; None: the pipeline's default
    guidance_scale: float | None = None  # None: the pipeline's default


@dataclass(frozen=True)
class MissingPhoto:
    """A photo to redraw: its current (failed) manifest entry and its caption."""

    entry: ManifestEntry
    caption: str


def check_model_reference(model: str) -> None:
    """Fail before hours of fetching if MODEL is clearly a path to nothing."""
    looks_like_path = model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1
    path = Path(model).expanduser()
    if looks_like_path and not path.is_dir():
        raise UserError(
            f"--fallback-generator {model!r} is not a folder. Give a diffusers pipeline folder "
            f"(with model_index.json) or a hub id such as stabilityai/stable-diffusion-3-medium-diffusers."
        )


def load_pipeline(options: FallbackOptions):
    """``AutoPipelineForText2Image.from_pretrained(model)`` on the chosen device."""
    # torch is slow to import: only this path needs it
    import torch
    from diffusers import AutoPipelineForText2Image

    device = resolve_device(options.device)
    kwargs = {"dtype": torch.float16 if device == "cuda" else torch.float32}
    if Path(options.model).is_dir():
        kwargs["local_files_only"] = True  # a local folder must never trigger a download
    try:
        pipeline = AutoPipelineForText2Image.from_pretrained(options.model, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(
            f"could not load the text-to-image pipeline {options.model!r}: {err}. Give a diffusers "
            f"pipeline folder (saved with save_pretrained) or a hub id that can be downloaded."
        ) from None
    pipeline = pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def photo_seed(stem: str, base_seed: int) -> int:
    """A seed of the photo's own, stable across runs and orders."""
    return (base_seed + int(hashlib.sha1(stem.encode("utf-8")).hexdigest()[:8], 16)) % (2**31)


def regenerate(
    missing: list[MissingPhoto],
    root: Path,
    options: FallbackOptions,
    record: Callable[[ManifestEntry], None],
    progress: bool = True,
) -> None:
    """Draw every missing photo that has a caption; ``record`` each result (the caller counts them)."""
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    drawable = [m for m in missing if m.caption]
    if not drawable:
        return  # no model to load: loading one takes longer than a whole small download
    pipeline = load_pipeline(options)
    for photo in tqdm(drawable, unit="photo", desc="redrawing", disable=not progress):
        entry = draw_one(pipeline, photo, root, options)
        if entry is not None:
            record(entry)


def draw_one(pipeline, photo: MissingPhoto, root: Path, options: FallbackOptions) -> ManifestEntry | None:
    """Generate, check and place one photo; None if the model failed on it."""
    # torch is slow to import: only this path needs it
    import torch

    kwargs = {
        "prompt": photo.caption,
        "num_inference_steps": options.steps,
        "generator": torch.Generator(device="cpu").manual_seed(photo_seed(photo.entry.stem, options.seed)),
    }
    if options.size:
        kwargs.update(height=options.size, width=options.size)
    if options.guidance_scale is not None:
        kwargs["guidance_scale"] = options.guidance_scale
    tmp = temp_path_for(root, photo.entry.stem)
    try:
        image = pipeline(**kwargs).images[0]
        image.save(tmp, format="PNG")
        final = place_photo(tmp, root, photo.entry.stem, check_image(tmp))
    except (RuntimeError, ValueError, OSError, ImageRejected):
        return None  # stays "failed" in the manifest; the summary counts it
    finally:
        tmp.unlink(missing_ok=True)
    return ManifestEntry(
        url=photo.entry.url,
        stem=photo.entry.stem,
        status=GENERATED,
        path=final.relative_to(root).as_posix(),
        reason=photo.entry.reason,
        bytes=final.stat().st_size,
        attempts=photo.entry.attempts,
        model=options.model,
        prompt=photo.caption,
        source=GENERATOR,
        tried=photo.entry.tried,
    )

"""The baselines of Table 2 (paper §3.1.4) as named presets, and training one in a single call.

Both baselines are pipelines: a text part (an LLM that writes photos as captions and reads
context photos as captions from a captioner) and an image part (a text-to-image model trained
on caption-photo pairs), trained apart and joined by caption text. The image part's
``model.text_from`` names the text part's run, so that ``load_system`` (and so ``photodialog
eval``, ``chat`` and ``serve``) loads the two as one system.

- ``pipeline``: the end-to-end model's own LLM and diffusion model, trained separately
  (``tiny-pipeline-*.yaml``; ``paper-pipeline-*-{photochat,dialogcc}.yaml``).
- ``divter``: a smaller dialogue LM in DialoGPT's layout (GPT-2) with the same captioner and
  image model (``tiny-divter-*.yaml``; ``paper-divter-*-{photochat,dialogcc}.yaml``).

``train_baseline`` trains both parts into ``OUT/text`` and ``OUT/image`` (the image part's
``text_from`` set to the absolute path of ``OUT/text``) and returns both; evaluate ``OUT/image``.
``photodialog train --baseline NAME [--scale SCALE] --out OUT`` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from photodialog.config import load_config
from photodialog.errors import UserError
from photodialog.registry import BASELINE_SCALES, BASELINES
from photodialog.training.trainer import Trainer



@dataclass(frozen=True)
class BaselineRecipes:
    """The two recipes of one baseline at one scale, and its name in tables."""

    name: str
    text: str
    image: str


def baseline_recipes(baseline: str, scale: str = "tiny") -> BaselineRecipes:
    """The shipped recipes of ``baseline`` (pipeline, divter) at ``scale`` (tiny, photochat, dialogcc)."""
    if baseline not in BASELINES:
        raise UserError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES.names)}")
    if scale not in BASELINE_SCALES:
        raise UserError(f"unknown scale {scale!r}; choose one of {', '.join(BASELINE_SCALES)}")
    table_name = BASELINES.entry(baseline).label
    if scale == "tiny":
        return BaselineRecipes(table_name, f"tiny-{baseline}-text", f"tiny-{baseline}-image")
    return BaselineRecipes(table_name, f"paper-{baseline}-text-{scale}", f"paper-{baseline}-image-{scale}")


@dataclass
class BaselineRun:
    """Where a trained baseline's parts are; evaluate ``image_dir``."""

    text_dir: Path
    image_dir: Path


def train_baseline(
    recipes: BaselineRecipes,
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    text_overrides: Sequence[str] = (),
    image_overrides: Sequence[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> BaselineRun:
    """Train the text part, then the image part joined to it; ``overrides`` apply to both.

    Both recipes are read and checked before any training, so a bad override costs nothing.
    """
    out = Path(out_dir)
    run = BaselineRun(out / "text", out / "image")
    text_from = f"model.text_from={run.text_dir.resolve()}"
    text_config = load_config(recipes.text, [*overrides, *text_overrides])
    image_config = load_config(recipes.image, [*overrides, *image_overrides, text_from])
    Trainer(text_config, run.text_dir, resume=resume, progress=progress).run()
    Trainer(image_config, run.image_dir, resume=resume, progress=progress).run()
    return run

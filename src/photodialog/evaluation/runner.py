"""What an evaluation scores: the target turns of a split, the model's replies, and its photos.

Per the protocol (docs/architecture.md, "Evaluation protocol") every turn ``i >= 1`` of every dialogue of the split is a
target, with turns ``[:i]`` as context (``load_targets``). ``generate_replies`` writes the
replies in batches (prompts of similar length together, so little padding is computed) and
returns them in the targets' order. ``draw_photos`` draws one photo per caption with the
image generator, in batches whose noise (a stochastic sampler's per-step noise included)
depends only on the seed and the batch index, so a rerun with the same seed and batch size
draws the same photos.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from photodialog.data.loading import load_dialogues
from photodialog.data.samples import build_samples
from photodialog.data.schema import Sample
from photodialog.errors import DataError
from photodialog.models.generation import Reply
from photodialog.models.generation_settings import GenerationSettings

# Noise seed of batch b under evaluation seed s: s * NOISE_SEED_STRIDE + b (distinct for any
# realistic number of batches, so two seeds never share a batch's noise).
NOISE_SEED_STRIDE = 1_000_003


def load_targets(data_path: str | Path, split: str, max_samples: int = 0, *, strict: bool = False) -> list[Sample]:
    """Every target turn of ``split`` (the first ``max_samples`` when > 0), in dataset order."""
    samples = build_samples(load_dialogues(data_path, split, strict=strict))
    if not samples:
        raise DataError(f"the {split} split of {data_path} has no dialogue with two turns or more: nothing to evaluate")
    return samples[:max_samples] if max_samples > 0 else samples


def _progress(total: int, desc: str, unit: str, enabled: bool):
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def _context_size(sample: Sample) -> int:
    return sum(len(turn.text) for turn in sample.context)


def generate_replies(
    system, samples: Sequence[Sample], settings: GenerationSettings, *, batch_size: int = 16,
    progress: bool = True, desc: str = "replies",
) -> list[Reply]:
    """The model's reply (text and captions, no photos) to each target's context, in order."""
    responder = system.responder()
    text_only = replace(settings, draw_photos=False)
    # Similar prompt lengths in one batch: left padding is computed too, so less of it is faster.
    order = sorted(range(len(samples)), key=lambda i: _context_size(samples[i]))
    replies: list[Reply | None] = [None] * len(samples)
    with _progress(len(samples), desc, "turn", progress) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            contexts = [samples[i].context for i in chunk]
            speakers = [samples[i].response.speaker for i in chunk]
            for index, reply in zip(chunk, responder.respond(contexts, speakers, text_only)):
                replies[index] = reply
            bar.update(len(chunk))
    return replies  # type: ignore[return-value]


def noise_seed(seed: int, batch_index: int) -> int:
    return seed * NOISE_SEED_STRIDE + batch_index


def iter_photos(
    generator, captions: Sequence[str], settings: GenerationSettings, *, seed: int, batch_size: int = 16,
    progress: bool = True, desc: str = "photos",
) -> Iterator:
    """One PIL photo per caption, in order, drawn in batches of ``batch_size`` with noise from ``seed``.

    A generator, so that a caller can save each photo as it comes instead of holding thousands of
    512 px photos in memory.
    """
    with _progress(len(captions), desc, "photo", progress) as bar:
        for batch_index, start in enumerate(range(0, len(captions), batch_size)):
            chunk = list(captions[start : start + batch_size])
            yield from generator.generate(
                chunk, steps=settings.diffusion_steps, guidance_scale=settings.guidance_scale,
                seed=noise_seed(seed, batch_index), sampler=settings.sampler,
            )
            bar.update(len(chunk))


def draw_photos(generator, captions: Sequence[str], settings: GenerationSettings, **kwargs) -> list:
    """``iter_photos`` as a list."""
    return list(iter_photos(generator, captions, settings, **kwargs))

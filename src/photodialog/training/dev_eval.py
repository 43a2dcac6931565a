"""Dev-set evaluation during training: the score that keeps the best checkpoint and stops early.

As the paper (§3.1.2) stops on dev BLEU-2 and an image score, so does this:

* ``dev_bleu2``: corpus BLEU-2 of greedy replies to a fixed subset of dev turns;
* ``dev_image``: on a synthetic world with a probe, the probe's all-attributes accuracy of photos
  drawn from the dev subset's gold captions (the world's objective stand-in for FID); elsewhere
  the negative teacher-forced dev image loss (FID needs Inception weights and thousands of photos);
* ``selection`` = ``dev_bleu2 / 100 + dev_image`` (whichever the model has), higher is better.

The teacher-forced dev losses are logged too. ``dev_competence`` scores, at every checkpoint of a run
on a synthetic world with ``train.competence_turns``, what matters for a photo-sharing bot: does
its own caption name the gold photo, does it share at the right turns, does it read the photos
(``evaluation/runner.py``), so that a run stopped before it learned shows it in its own numbers. Every random generator (python, numpy, torch, CUDA)
is seeded with ``DEV_SEED`` for the evaluation and put back afterwards, so evaluating never
changes the training run's random stream (a resumed run stays exact).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from photodialog.config import RunConfig
from photodialog.data.layout import WORLD_FILE
from photodialog.data.synth import find_attributes
from photodialog.data.synth.probe import Probe
from photodialog.data.synth.world import photo_attributes
from photodialog.evaluation.runner import draw_photos, generate_replies, text_competence
from photodialog.evaluation.text_metrics import text_scores
from photodialog.models.generation_settings import settings_from_config
from photodialog.checkpoints import restore_rng, rng_state
from photodialog.training.data import training_dataset

DEV_SEED = 1234
DEFAULT_TURNS = 128
DEV_PHOTOS = 32


@dataclass
class DevSet:
    """The fixed subset of dev turns every evaluation scores, and the same turns as model inputs
    (built once per run: encoding them again at each evaluation would be wasted work)."""

    samples: list
    dataset: torch.utils.data.Dataset


def dev_set(system, dev_samples, config: RunConfig) -> DevSet | None:
    """``None`` without dev turns: then there is no dev score."""
    if not dev_samples:
        return None
    samples = dev_samples[: config.eval.max_samples or DEFAULT_TURNS]
    return DevSet(samples, training_dataset(samples, system.formatter))


def dev_selection(system, model, dev: DevSet | None, config: RunConfig) -> dict:
    """The dev losses and scores of ``model`` on ``dev`` (the module docstring), ``{}`` without dev turns.

    Runs in eval mode without gradients and on its own random stream, so training continues
    exactly as if nothing had run.
    """
    if dev is None:
        return {}
    with _own_random_stream(), _eval_mode(model), torch.no_grad():
        result = _losses(system, model, dev.dataset, config)
        result.update(_scores(system, dev.samples, config, result))
    return result


def dev_competence(system, samples, config: RunConfig) -> dict:
    """``text_competence`` (%) of ``system`` on the first ``train.competence_turns`` of ``samples``
    (dev targets, dataset order), ``{}`` when off, without an LLM, or off a synthetic world. Runs
    on its own random stream in eval mode, like ``dev_selection``."""
    turns = config.train.competence_turns
    if not turns or not samples or system.formatter is None or not (Path(config.data.path) / WORLD_FILE).is_file():
        return {}
    settings = settings_from_config(config.eval, {"seed": DEV_SEED})
    with _own_random_stream(), _eval_mode(system.model), torch.no_grad():
        return text_competence(system, samples[:turns], settings, batch_size=config.eval.batch_size,
                               truth=photo_attributes(config.data.path))


@contextlib.contextmanager
def _own_random_stream():
    """Every generator seeded with DEV_SEED inside (the same score for the same weights), and the
    training run's states put back after: torch.random.fork_rng would leave numpy and, as seeding
    torch also seeds every GPU, CUDA changed."""
    saved = rng_state()
    random.seed(DEV_SEED)
    np.random.seed(DEV_SEED)
    torch.manual_seed(DEV_SEED)
    try:
        yield
    finally:
        restore_rng(saved)


@contextlib.contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _losses(system, model, dataset, config: RunConfig) -> dict:
    totals: dict[str, list[float]] = {"dev_loss": [], "dev_text_loss": [], "dev_image_loss": []}
    step = config.train.micro_batch_size
    for start in range(0, len(dataset), step):
        batch = system.make_batch([dataset[i] for i in range(start, min(len(dataset), start + step))])
        out = model(batch.to(system.model.device), tau=config.train.tau_end, alpha=config.train.alpha, text_weight=config.train.text_loss_weight)
        for key, value in (("dev_loss", out.loss), ("dev_text_loss", out.text_loss), ("dev_image_loss", out.image_loss)):
            if value is not None and torch.isfinite(value):
                totals[key].append(float(value))
    return {key: sum(values) / len(values) for key, values in totals.items() if values}


def _scores(system, samples, config: RunConfig, losses: dict) -> dict:
    settings = settings_from_config(config.eval, {"seed": DEV_SEED})
    result, selection = {}, 0.0
    if system.formatter is not None:
        result["dev_bleu2"] = _bleu2(system, samples, settings, config.eval.batch_size)
        selection += result["dev_bleu2"] / 100
    if system.model.generator is not None:
        probe_score = _probe_score(system, samples, settings, config.data.path)
        if probe_score is not None:
            result["dev_image"] = probe_score
        elif "dev_image_loss" in losses:
            result["dev_image"] = -losses["dev_image_loss"]
        selection += result.get("dev_image", 0.0)
    result["selection"] = selection
    return result


def _bleu2(system, samples, settings, batch_size: int) -> float:
    replies = generate_replies(system, samples, settings, batch_size=batch_size, progress=False)
    return text_scores([r.text for r in replies], [s.response.text for s in samples]).bleu2


def _probe_score(system, samples, settings, world: str) -> float | None:
    """All-attributes accuracy (0-1) of photos drawn from gold dev captions, on a world with a probe."""
    if not world or not (Path(world) / "probe").is_dir():
        return None
    captions = [p.caption for s in samples for p in s.response.photos][:DEV_PHOTOS]
    if not captions:
        return None
    photos = draw_photos(system.model.generator, captions, settings, seed=DEV_SEED, progress=False)
    return Probe.load(world).score(photos, [find_attributes(c) for c in captions])["all"]

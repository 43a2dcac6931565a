"""Dev-set evaluation during training: the score that picks the best checkpoint and stops early.

The selection score is the negative teacher-forced dev loss (``L_t + alpha * L_v`` on a fixed
subset of dev samples, with fixed noise), higher is better. It runs under a forked RNG so
that evaluating never changes the training run's random stream (resume stays exact).
"""

from __future__ import annotations

import random

import torch

from photodialog.config import RunConfig
from photodialog.training.data import CaptionPairs, EncodedSamples

DEV_SEED = 1234


def dev_selection(system, model, dev_samples, config: RunConfig) -> dict:
    if not dev_samples:
        return {}
    limit = config.eval.max_samples or 256
    samples = dev_samples[:limit]
    if system.formatter is None:
        dataset = CaptionPairs([s for s in samples if s.response.shares_photo])
    else:
        dataset = EncodedSamples(samples, system.formatter)
    if len(dataset) == 0:
        return {}
    python_state = random.getstate()
    was_training = model.training
    model.eval()
    totals = {"dev_loss": 0.0, "dev_text_loss": 0.0, "dev_image_loss": 0.0}
    counts = {"dev_loss": 0, "dev_text_loss": 0, "dev_image_loss": 0}
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(DEV_SEED)
            random.seed(DEV_SEED)
            for start in range(0, len(dataset), config.train.micro_batch_size):
                batch = system.make_batch([dataset[i] for i in range(start, min(len(dataset), start + config.train.micro_batch_size))])
                out = model(batch.to(system.model.device), tau=config.train.tau_end, alpha=config.train.alpha, text_weight=config.train.text_loss_weight)
                for key, value in (("dev_loss", out.loss), ("dev_text_loss", out.text_loss), ("dev_image_loss", out.image_loss)):
                    if value is not None and torch.isfinite(value):
                        totals[key] += float(value)
                        counts[key] += 1
    finally:
        random.setstate(python_state)
        model.train(was_training)
    result = {key: totals[key] / counts[key] for key in totals if counts[key]}
    if "dev_loss" in result:
        result["selection"] = -result["dev_loss"]
    return result


"""Dev evaluation leaves the training run's random stream exactly where it was."""

from __future__ import annotations

import random

import numpy as np
import torch

from photodialog.config import load_config
from photodialog.training import dev_eval


def _draw() -> list[float]:
    """One number from each generator the training run uses (python, numpy, torch)."""
    return [random.random(), float(np.random.rand()), float(torch.rand(1))]


def _evaluation_that_draws_random_numbers(monkeypatch, draws: list) -> None:
    # Stand-ins for the losses and scores that consume randomness as generation and diffusion do.
    def losses(system, model, dataset, config):
        draws.append(_draw())
        return {"dev_loss": 1.0}

    monkeypatch.setattr(dev_eval, "_losses", losses)
    monkeypatch.setattr(dev_eval, "_scores", lambda system, samples, config, result: {"selection": 0.0})


def test_evaluation_does_not_change_the_training_random_stream(monkeypatch):
    config = load_config("tiny-e2e")
    draws = []
    _evaluation_that_draws_random_numbers(monkeypatch, draws)
    model = torch.nn.Linear(1, 1).train()

    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    _draw()
    without_evaluation = _draw()

    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    _draw()
    dev = dev_eval.DevSet(samples=["a dev turn"], dataset=["its model inputs"])
    dev_eval.dev_selection(system=None, model=model, dev=dev, config=config)
    dev_eval.dev_selection(system=None, model=model, dev=dev, config=config)
    after_evaluation = _draw()

    assert after_evaluation == without_evaluation
    assert draws[0] == draws[1]  # the evaluation has a stream of its own: same weights, same score
    assert model.training  # and the model is back in training mode

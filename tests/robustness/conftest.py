"""Fixtures of the robustness tests (the tiny run and world come from tests/conftest.py)."""

from __future__ import annotations

import pytest


# ---- run faults (test_runs_*.py): quick tiny runs on the shared tiny world

RUN_QUICK = ["train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000", "model.image_loss_repeats=1",
             "train.warmup_steps=2", "train.log_every_steps=1"]


@pytest.fixture
def run_args(tiny_world):
    """``train`` arguments for a quick tiny run on the shared world (or ``data``), plus ``extra`` overrides."""

    def make(*extra: str, data=None) -> list[str]:
        return ["--config", "tiny-e2e", f"data.path={data or tiny_world}", *RUN_QUICK, *extra, "--no-progress"]

    return make

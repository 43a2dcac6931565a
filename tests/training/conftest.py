"""Helpers for the trainer tests: small runs of the tiny recipe on the shared tiny world."""

from __future__ import annotations

from pathlib import Path

import pytest

# train.cache_frozen=false: tiny-e2e's generator is latent, and a resumed run re-encodes the cached
# photos in other batches (equal within float rounding, training/caches.py); these tests compare
# resumed and uninterrupted runs bit for bit. tests/training/test_caches.py tests the caches.
QUICK = ["train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000", "model.image_loss_repeats=1",
         "train.warmup_steps=2", "train.log_every_steps=1", "train.cache_frozen=false"]


@pytest.fixture
def final_weights():
    """The trainable weights of a run's latest checkpoint."""
    from safetensors.torch import load_file

    from photodialog.checkpoints import list_checkpoints

    return lambda run_dir: load_file(str(list_checkpoints(Path(run_dir))[-1] / "trainable.safetensors"))


@pytest.fixture(scope="session")  # a pure function of the session's world: module fixtures use it too
def quick_args(tiny_world):
    def make(*extra: str) -> list[str]:
        return ["--config", "tiny-e2e", f"data.path={tiny_world}", *QUICK, *extra, "--no-progress"]

    return make

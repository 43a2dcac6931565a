"""Session fixtures shared by every test folder: a small synthetic world and a tiny trained run.

``tiny_world`` is a 60-dialogue world at 32 px; ``tiny_run`` trains the tiny end-to-end recipe
on it for two steps (a real run folder with a real checkpoint, in well under a minute).
"""

from __future__ import annotations

import pytest

TINY_RUN_OVERRIDES = [
    "max_steps=2", "train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000",
    "train.save_every_steps=1", "model.image_loss_repeats=1", "train.warmup_steps=1",
]


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    from photodialog.data.synth import write_world

    path = tmp_path_factory.mktemp("world") / "world"
    write_world(path, dialogues=60, seed=0, image_size=32, progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_world, tmp_path_factory):
    """A run folder of the tiny end-to-end recipe after two optimizer steps."""
    from photodialog.config import load_config
    from photodialog.training.trainer import Trainer

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-e2e"
    config = load_config("tiny-e2e", [f"data.path={tiny_world}", *TINY_RUN_OVERRIDES])
    Trainer(config, run_dir, progress=False).run()
    return run_dir

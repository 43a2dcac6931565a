"""Resuming after changing train.micro_batch_size goes on at exactly the next sample, since the
data position is kept in samples (issue 18 item 2: it trained step 3 on step 2's samples again)."""

from __future__ import annotations

import json

import pytest

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.cli.main import main
from photodialog.errors import UserError


def _samples(run) -> dict[int, list[int]]:
    rows = [json.loads(line) for line in (run / "samples.rank0.jsonl").read_text().splitlines()]
    return {row["step"]: sorted(row["indices"]) for row in rows}


def _args(run_args, micro, steps):
    return run_args("train.batch_size=8", f"train.micro_batch_size={micro}", f"max_steps={steps}",
                    "train.save_every_steps=1", "train.log_sample_ids=true")


def test_resuming_with_a_smaller_micro_batch_trains_the_next_samples(tmp_path, run_args):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(["train", *_args(run_args, 8, 3), "--out", str(reference)]) == 0
    assert main(["train", *_args(run_args, 8, 2), "--out", str(resumed)]) == 0
    assert read_state(list_checkpoints(resumed)[-1]).samples_in_epoch == 16
    assert main(["train", *_args(run_args, 4, 3), "--out", str(resumed), "--resume"]) == 0
    expected, got = _samples(reference), _samples(resumed)
    assert got[3] == expected[3] and got[3] != got[2]


def test_a_position_that_the_new_micro_batch_cannot_reach_is_refused(tmp_path, run_args, tiny_world):
    from photodialog.config import load_config
    from photodialog.training.trainer import Trainer

    run = tmp_path / "run"
    assert main(["train", *_args(run_args, 4, 1), "--out", str(run)]) == 0
    state_file = list_checkpoints(run)[-1] / "state.json"
    state = json.loads(state_file.read_text())
    state["samples_in_epoch"] = 6  # not a whole number of micro-batches of 4
    state_file.write_text(json.dumps(state))
    config = load_config("tiny-e2e", [f"data.path={tiny_world}", "train.batch_size=8", "train.micro_batch_size=4", "max_steps=2",
                                      "model.image_loss_repeats=1", "train.eval_every_epochs=1000"])
    with pytest.raises(UserError, match="6 samples into epoch 0.*micro_batch_size"):
        Trainer(config, run, resume=True, progress=False).run()

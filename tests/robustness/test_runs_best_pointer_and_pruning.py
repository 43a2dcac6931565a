"""Data loss around the best pointer and pruning: a kill between writing a checkpoint and moving
the pointer, pruning that must never delete the real best, a finished run without a dev split
that is extended, a kill while pruning (issue 18 item 2)."""

from __future__ import annotations

import shutil

import pytest

from photodialog.checkpoints import best_checkpoint, list_checkpoints, read_state, resolve_checkpoint
from photodialog import checkpoints as ckpt

from .run_helpers import pointer, save_step


def test_a_kill_before_the_pointer_moved_is_corrected_from_the_state(tmp_path):
    save_step(tmp_path, 12, best_step=12)
    ckpt.mark_best(tmp_path, 12)
    save_step(tmp_path, 24, best_step=24)  # killed here: mark_best(24) never ran
    assert pointer(tmp_path) == "step-0000012"
    assert best_checkpoint(tmp_path).name == resolve_checkpoint(tmp_path).name == "step-0000024"
    ckpt.sync_best_pointer(tmp_path)  # what a --resume does first
    assert pointer(tmp_path) == "step-0000024"


def test_pruning_after_that_kill_keeps_the_real_best(tmp_path):
    save_step(tmp_path, 12, best_step=12)
    ckpt.mark_best(tmp_path, 12)
    save_step(tmp_path, 24, best_step=24)  # the pointer still names step 12
    save_step(tmp_path, 36, best_step=24, keep_last=1)
    save_step(tmp_path, 48, best_step=24, keep_last=1)
    kept = [p.name for p in list_checkpoints(tmp_path)]
    assert "step-0000024" in kept and "step-0000048" in kept and "step-0000036" not in kept
    assert best_checkpoint(tmp_path).name == "step-0000024"


def test_a_kill_during_pruning_leaves_no_half_deleted_checkpoint(tmp_path, monkeypatch):
    save_step(tmp_path, 1)
    save_step(tmp_path, 2)
    real_rmtree = shutil.rmtree
    calls = {"n": 0}

    def killed_halfway(path, *args, **kwargs):
        calls["n"] += 1
        if str(path).endswith(".deleting.tmp") and path.exists():
            next(p for p in sorted(path.iterdir())).unlink()  # some files gone...
            raise KeyboardInterrupt  # ...then the kill
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_step(tmp_path, 3, keep_last=1)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    # No step folder lacks files: the pruned one was renamed away before anything was deleted.
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert "step-0000001" not in names and "step-0000001.deleting.tmp" in names
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000002", "step-0000003"]
    save_step(tmp_path, 4, keep_last=1)  # the next prune clears what the kill left
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir()) == ["step-0000004"]


def test_extending_a_finished_run_without_a_dev_split_moves_the_best_to_the_new_end(tmp_path, run_args):
    from photodialog.cli.main import main

    run = tmp_path / "run"
    args = ("data.dev_split=no-such-split", "train.save_every_steps=1", "train.keep_last=1")
    assert main(["train", *run_args(*args, "max_steps=2"), "--out", str(run)]) == 0
    assert pointer(run) == "step-0000002"
    assert main(["train", *run_args(*args, "max_steps=4"), "--out", str(run), "--resume"]) == 0
    assert pointer(run) == "step-0000004" and resolve_checkpoint(run).name == "step-0000004"
    assert read_state(resolve_checkpoint(run)).step == 4

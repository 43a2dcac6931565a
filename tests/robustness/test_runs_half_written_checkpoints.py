"""A half-written newest checkpoint (0-byte files after a power cut, a safetensors file cut short)
is named, skipped with a warning, and the previous whole one is used by --resume, eval, chat and
serve (issue 18 item 2)."""

from __future__ import annotations

import logging
import shutil

import pytest
from .run_helpers import cut_short, manifest_files, save_step

from photodialog.checkpoints import best_checkpoint, checkpoint_problem, list_checkpoints, resolve_checkpoint
from photodialog.errors import UserError


def test_a_manifest_with_sizes_and_hashes_is_written_last(tmp_path):
    folder = save_step(tmp_path, 1)
    files = manifest_files(folder)
    assert {"trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng.json", "config.yaml"} <= set(files)
    assert "state.json" not in files  # rewritten on its own (finished flag): it only has to parse
    assert all(len(entry["sha256"]) == 64 and entry["bytes"] > 0 for entry in files.values())
    assert checkpoint_problem(folder, hashes=True) is None


@pytest.mark.parametrize("damage", ["cut-short", "zero-bytes", "flipped-byte", "no-weights", "bad-state"])
def test_a_damaged_newest_checkpoint_is_named_skipped_and_the_previous_is_used(tmp_path, damage, caplog):
    save_step(tmp_path, 1)
    newest = save_step(tmp_path, 2)
    weights = newest / "trainable.safetensors"
    if damage == "cut-short":
        cut_short(weights)
    elif damage == "zero-bytes":
        for path in newest.iterdir():
            path.write_bytes(b"")
    elif damage == "flipped-byte":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "no-weights":
        weights.unlink()
    else:
        (newest / "state.json").write_text("{\"step\": ", encoding="utf-8")
    if damage == "flipped-byte":  # same size: only the hash check (--resume) sees it
        assert checkpoint_problem(newest) is None and "SHA-256" in checkpoint_problem(newest, hashes=True)
        return
    with caplog.at_level(logging.WARNING):
        assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000001"]
    assert "step-0000002" in caplog.text and "broken" in caplog.text
    assert resolve_checkpoint(tmp_path).name == "step-0000001" == best_checkpoint(tmp_path).name
    with pytest.raises(UserError, match="step-0000002 is broken .*whole checkpoints: step-0000001"):
        resolve_checkpoint(newest)  # named on purpose: refused, with the whole ones listed


def test_an_older_checkpoint_without_a_manifest_is_checked_by_its_safetensors_header(tmp_path):
    old = save_step(tmp_path, 1)
    (old / "manifest.json").unlink()  # as written by earlier versions
    assert checkpoint_problem(old) is None
    cut_short(old / "trainable.safetensors", 0.9)
    assert "cut short" in checkpoint_problem(old)
    (old / "trainable.safetensors").write_bytes(b"")
    assert "empty" in checkpoint_problem(old)


def _copy_run(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def test_eval_chat_and_serve_load_the_previous_whole_checkpoint(tiny_run, tmp_path, caplog):
    from photodialog.system import load_system

    run = _copy_run(tiny_run, tmp_path)
    steps = list_checkpoints(run)
    assert len(steps) >= 2, "the shared tiny run keeps two checkpoints"
    cut_short(steps[-1] / "trainable.safetensors")
    with caplog.at_level(logging.WARNING):
        system = load_system(run, "cpu")  # what eval, chat and serve call
    assert system.checkpoint == steps[-2]
    assert steps[-1].name in caplog.text


def test_train_resume_skips_a_broken_newest_checkpoint_and_trains_on(tmp_path, run_args, caplog):
    from photodialog.checkpoints import read_state
    from photodialog.cli.main import main

    run = tmp_path / "run"
    args = ("train.save_every_steps=1", "train.keep_last=3")
    assert main(["train", *run_args(*args, "max_steps=2"), "--out", str(run)]) == 0
    for path in list_checkpoints(run)[-1].iterdir():
        path.write_bytes(b"")  # the power cut: every file of the newest checkpoint empty
    with caplog.at_level(logging.INFO):
        assert main(["train", *run_args(*args, "max_steps=3"), "--out", str(run), "--resume"]) == 0
    assert "step-0000002" in caplog.text and "broken" in caplog.text
    assert "resumed from step-0000001" in caplog.text
    assert read_state(list_checkpoints(run)[-1]).step == 3
    assert checkpoint_problem(run / "checkpoints" / "step-0000002") is None  # written again, whole

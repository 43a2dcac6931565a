"""A run folder is train's own: a folder it did not make, or a checkpoint folder, is refused before
anything is written; one trainer at a time writes a run folder (a lock naming the first)."""

from __future__ import annotations

import os
import socket

from photodialog.checkpoints import checkpoint_problem, list_checkpoints
from photodialog.cli.main import main
from photodialog.output_files import claim_folder, lock_folder


def test_a_folder_train_did_not_make_is_refused_and_its_recipe_kept(tmp_path, quick_args, capsys):
    project = tmp_path / "exp"
    project.mkdir()
    recipe = project / "config.yaml"
    recipe.write_text("# my experiment: 300 steps\ntrain:\n  max_steps: 300\n")
    before = recipe.read_bytes()
    assert main(["train", *quick_args("max_steps=1"), "--out", str(project)]) == 2
    err = capsys.readouterr().err
    assert "not made by `photodialog train`" in err and str(project) in err
    assert recipe.read_bytes() == before and sorted(p.name for p in project.iterdir()) == ["config.yaml"]


def test_a_checkpoint_folder_is_refused_and_stays_whole(tmp_path, quick_args, capsys):
    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=1", "train.save_every_steps=1"), "--out", str(run)]) == 0
    step = list_checkpoints(run)[-1]
    capsys.readouterr()
    assert main(["train", *quick_args("max_steps=1"), "--out", str(step)]) == 2
    assert "is a checkpoint folder" in capsys.readouterr().err
    assert checkpoint_problem(step, hashes=True) is None


def test_a_second_trainer_on_a_locked_run_folder_is_refused_naming_the_first(tmp_path, quick_args, capsys):
    run = claim_folder(tmp_path / "run", "train")
    with lock_folder(run, "the run folder"):  # as a running trainer holds it
        assert main(["train", *quick_args("max_steps=1"), "--out", str(run), "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in err
        assert not (run / "config.yaml").exists()
    # the lock is the process's: once released (or the process gone), the run goes on
    assert main(["train", *quick_args("max_steps=1"), "--out", str(run), "--resume"]) == 0

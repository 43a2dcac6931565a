"""SECURITY: --resume never unpickles code. optimizer.pt / scheduler.pt are read with
weights_only=True and the random generators' state is JSON; a crafted file is refused, and the
code in it never runs (issue 18 item 2)."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from photodialog.checkpoints import file_digest, list_checkpoints
from photodialog.errors import UserError
from photodialog import checkpoints as ckpt

from .run_helpers import save_step, tiny_parts


class _Payload:
    """Unpickling this runs ``open(MARKER, 'w')``: what a hostile run folder would do."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(path, marker) -> None:
    with open(path, "wb") as handle:
        pickle.dump({"state": {}, "param_groups": [], "x": _Payload(str(marker))}, handle)


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt"])
def test_a_crafted_pickle_is_refused_and_its_code_never_runs(tmp_path, name):
    folder = save_step(tmp_path / "run", 1)
    marker = tmp_path / "pwned"
    _crafted(folder / name, marker)
    _, optimizer, scheduler = tiny_parts()
    with pytest.raises(UserError, match=f"{name} holds more than tensors.*could run code"):
        ckpt.load_resume_state(folder, optimizer, scheduler)
    assert not marker.exists()


def test_train_resume_from_a_crafted_run_folder_exits_2_without_running_it(tmp_path, run_args, capsys):
    from photodialog.cli.main import main

    run = tmp_path / "run"
    assert main(["train", *run_args("max_steps=1"), "--out", str(run)]) == 0
    newest = list_checkpoints(run)[-1]
    marker = tmp_path / "pwned"
    _crafted(newest / "optimizer.pt", marker)
    manifest = json.loads((newest / "manifest.json").read_text())
    manifest["files"]["optimizer.pt"] = {"bytes": (newest / "optimizer.pt").stat().st_size,
                                         "sha256": file_digest(newest / "optimizer.pt")}
    (newest / "manifest.json").write_text(json.dumps(manifest))  # a consistent, hostile folder
    code = main(["train", *run_args("max_steps=2"), "--out", str(run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "could run code" in err and "Traceback" not in err
    assert not marker.exists()


def test_what_is_loaded_is_checked_against_what_it_must_be(tmp_path):
    folder = save_step(tmp_path / "run", 1)
    torch.save({"something": torch.zeros(2)}, folder / "optimizer.pt")  # tensors, but not an optimizer's state
    _, optimizer, scheduler = tiny_parts()
    with pytest.raises(UserError, match="optimizer.pt is not a saved optimizer state"):
        ckpt.load_resume_state(folder, optimizer, scheduler)
    folder = save_step(tmp_path / "run2", 1)
    (folder / "rng.json").write_text(json.dumps({"python": [1]}))
    with pytest.raises(UserError, match="rng.json is not a saved random-generator state"):
        ckpt.load_resume_state(folder, *tiny_parts()[1:])


def test_the_random_streams_round_trip_through_json(tmp_path):
    import random

    import numpy as np

    folder = save_step(tmp_path / "run", 1)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    ckpt.load_resume_state(folder, *tiny_parts()[1:])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_an_older_checkpoint_with_a_pickled_rng_resumes_without_it_and_says_so(tmp_path, caplog):
    import logging

    folder = save_step(tmp_path / "run", 1)
    (folder / "rng.json").unlink()
    with caplog.at_level(logging.WARNING):
        ckpt.load_resume_state(folder, *tiny_parts()[1:])
    assert "random generators start afresh" in caplog.text

"""The disk filling up while a checkpoint is written: a "no space left" message, not a serializer
traceback; the earlier checkpoint survives and --resume works (issue 18 item 2)."""

from __future__ import annotations

import errno

import pytest

from photodialog.checkpoints import checkpoint_problem, list_checkpoints
from photodialog.errors import UserError

from .run_helpers import save_step


def _safetensors_disk_full(*args, **kwargs):
    # What safetensors raises when the write fails for lack of space (seen on a full 75 MB tmpfs).
    from safetensors import SafetensorError

    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


def _torch_disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where, fail", [("safetensors.torch.save_file", _safetensors_disk_full), ("torch.save", _torch_disk_full)])
def test_a_full_disk_is_a_message_and_the_earlier_checkpoint_survives(tmp_path, monkeypatch, where, fail):
    run = tmp_path / "run"
    earlier = save_step(run, 1)
    module, name = where.rsplit(".", 1)
    monkeypatch.setattr(f"{module}.{name}", fail)
    with pytest.raises(UserError, match="no space left on the device while writing the checkpoint of step 2.*step-0000001 is intact.*--resume"):
        save_step(run, 2)
    assert list_checkpoints(run) == [earlier] and checkpoint_problem(earlier, hashes=True) is None
    assert not list((run / "checkpoints").glob("*.tmp")), "the half-written folder was left behind"


def test_other_write_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr("torch.save", broken)
    with pytest.raises(RuntimeError, match="something else"):
        save_step(tmp_path / "run", 1)


def test_train_on_a_full_disk_exits_2_with_the_message_then_resumes(tmp_path, run_args, monkeypatch, capsys):
    from photodialog.cli.main import main

    run = tmp_path / "run"
    args = ("train.save_every_steps=1", "train.keep_last=5")
    assert main(["train", *run_args(*args, "max_steps=1"), "--out", str(run)]) == 0
    import safetensors.torch

    real = safetensors.torch.save_file
    monkeypatch.setattr(safetensors.torch, "save_file", _safetensors_disk_full)
    code = main(["train", *run_args(*args, "max_steps=2"), "--out", str(run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "no space left on the device" in err and "Traceback" not in err
    monkeypatch.setattr(safetensors.torch, "save_file", real)  # space freed
    assert main(["train", *run_args(*args, "max_steps=2"), "--out", str(run), "--resume"]) == 0
    assert [p.name for p in list_checkpoints(run)] == ["step-0000001", "step-0000002"]


def test_a_full_disk_anywhere_else_is_a_message_not_a_traceback(monkeypatch, capsys):
    from photodialog.cli import main as cli_main

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.jsonl")

    parser = cli_main.build_parser()
    monkeypatch.setattr(cli_main, "build_parser", lambda argv=None: parser)
    monkeypatch.setattr(parser, "parse_known_args", lambda argv: (type("Args", (), {"func": staticmethod(full)})(), []))
    assert cli_main.main([]) == 2
    assert "no space left on the device (/runs/x/metrics.jsonl)" in capsys.readouterr().err

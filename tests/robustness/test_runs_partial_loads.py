"""Silent partial loads: a checkpoint missing trained tensors, or holding another config's
weights, is refused with a message instead of loading with the missing parts untrained
(issue 18 item 2)."""

from __future__ import annotations

import shutil

import pytest
from safetensors.torch import load_file, save_file

from photodialog.checkpoints import list_checkpoints
from photodialog.errors import UserError


def _run_with_weights(tiny_run, tmp_path, change):
    """A copy of the shared tiny run whose newest checkpoint's weights are ``change(weights)``,
    written as an older version would have (no manifest), so only the load can notice."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for folder in list_checkpoints(run)[:-1]:
        shutil.rmtree(folder)
    newest = list_checkpoints(run)[-1]
    for name in ("trainable.safetensors", "ema.safetensors"):
        if (newest / name).is_file():
            save_file(change(load_file(str(newest / name))), str(newest / name))
    (newest / "manifest.json").unlink()
    (run / "checkpoints" / "best").unlink(missing_ok=True)
    return run


def test_a_checkpoint_missing_most_trained_tensors_is_refused(tiny_run, tmp_path):
    from photodialog.system import load_system

    run = _run_with_weights(tiny_run, tmp_path, lambda w: dict(list(w.items())[: len(w) // 10]))
    with pytest.raises(UserError, match=r"lacks \d+ of the \d+ trained tensors of this model .*use another checkpoint"):
        load_system(run, "cpu")


def test_a_tensor_of_another_shape_is_refused(tiny_run, tmp_path):
    import torch

    from photodialog.system import load_system

    def reshape_one(weights):
        name = next(n for n in weights if not n.startswith("__"))
        weights[name] = torch.zeros(weights[name].numel() + 1)
        return weights

    with pytest.raises(UserError, match="has shape .* the model expects"):
        load_system(_run_with_weights(tiny_run, tmp_path, reshape_one), "cpu")


def test_the_chat_command_exits_2_with_the_message(tiny_run, tmp_path, capsys):
    from photodialog.cli.main import main

    run = _run_with_weights(tiny_run, tmp_path, lambda w: dict(list(w.items())[:3]))
    code = main(["chat", "--checkpoint", str(run), "--message", "hi", "--json", "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "trained tensors" in err and "Traceback" not in err


def test_a_whole_checkpoint_still_loads(tiny_run, tmp_path):
    from photodialog.system import load_system

    assert load_system(_run_with_weights(tiny_run, tmp_path, lambda w: w), "cpu").checkpoint.name.startswith("step-")

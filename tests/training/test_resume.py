"""A run killed with SIGKILL mid-step resumes and ends with the same parameters as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.cli.main import main


def test_kill_minus_nine_then_resume_matches_uninterrupted(tmp_path, quick_args, final_weights):
    steps = ["max_steps=6", "train.save_every_steps=2"]
    reference = tmp_path / "reference"
    assert main(["train", *quick_args(*steps), "--output-dir", str(reference)]) == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "photodialog", "train", *quick_args(*steps), "--output-dir", str(killed)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while not list_checkpoints(killed) and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert list_checkpoints(killed), "the run wrote no checkpoint before the deadline"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    interrupted_at = read_state(list_checkpoints(killed)[-1]).step
    assert interrupted_at < 6, "the kill came too late to test anything"

    assert main(["train", *quick_args(*steps), "--output-dir", str(killed), "--resume"]) == 0
    assert read_state(list_checkpoints(killed)[-1]).step == 6
    ours, theirs = final_weights(killed), final_weights(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


def test_existing_run_needs_resume_flag(tmp_path, quick_args, capsys):
    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=1"), "--output-dir", str(run)]) == 0
    assert main(["train", *quick_args("max_steps=1"), "--output-dir", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_only_trainable_weights_and_resume_state_are_saved(tmp_path, quick_args, final_weights):
    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=2", "train.save_every_steps=1", "train.keep_last=1",
                                      "model.trainable.text_encoder=frozen"), "--output-dir", str(run)]) == 0
    checkpoints = list_checkpoints(run)
    assert len(checkpoints) == 1  # keep_last=1 pruned step 1 (the best pointer names the last)
    files = {p.name for p in checkpoints[0].iterdir()}
    assert {"trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng.json", "state.json", "config.yaml", "manifest.json"} <= files
    weights = final_weights(run)
    assert not any(name.startswith("generator.text_encoder") for name in weights)
    assert any(name.startswith("llm.") for name in weights)
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_weight_average_is_saved_resumed_and_used_for_inference(tmp_path, quick_args, final_weights):
    from safetensors.torch import load_file

    from photodialog.checkpoints import EMA_WEIGHTS
    from photodialog.system import load_system

    args = quick_args("max_steps=4", "train.save_every_steps=2", "train.ema_decay=0.9")
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", *args, "--output-dir", str(straight)]) == 0
    assert main(["train", *quick_args("max_steps=2", "train.save_every_steps=2", "train.ema_decay=0.9"), "--output-dir", str(split)]) == 0
    assert main(["train", *args, "--output-dir", str(split), "--resume"]) == 0
    last = list_checkpoints(straight)[-1]
    average, resumed = load_file(str(last / EMA_WEIGHTS)), load_file(str(list_checkpoints(split)[-1] / EMA_WEIGHTS))
    assert int(average.pop("__updates__")) == 4 == int(resumed.pop("__updates__"))
    weights = final_weights(straight)
    assert average.keys() == weights.keys()
    assert all(torch.equal(average[k], resumed[k]) for k in average)
    assert any(not torch.equal(average[k], weights[k]) for k in average)  # an average, not the last weights
    name = next(iter(average))
    loaded = dict(load_system(straight).model.named_parameters())[name]
    assert torch.equal(loaded.detach(), average[name].to(loaded.dtype))

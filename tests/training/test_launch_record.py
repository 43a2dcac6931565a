"""What a run records of its launch (environment.json's ``launch``), and a launch that asked for
several processes but started one says so; docs/multi-gpu.md's CPU command runs two processes."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from photodialog.training.engines import Engine, ignored_processes, launch_info

DOC = Path(__file__).resolve().parents[2] / "docs" / "multi-gpu.md"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_a_one_process_launch_of_several_is_recognised():
    one_of_two = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert "started one" in ignored_processes(one_of_two)
    assert ignored_processes({**one_of_two, "WORLD_SIZE": "2"}) is None  # torchrun started them all
    assert ignored_processes({"ACCELERATE_USE_CPU": "True"}) is None  # asked for one
    assert ignored_processes({}) is None  # plain python
    info = launch_info(Engine("single", 1), batch_size=16, micro_batch_size=4, accumulation=4, environ=one_of_two)
    assert info["processes"] == 1 and info["effective_batch"] == 16 and info["accumulation"] == 4
    assert info["launcher"] == "accelerate launch" and "started one" in info["processes_requested_but_not_started"]
    assert "processes_requested_but_not_started" not in launch_info(Engine("single", 1), batch_size=4,
                                                                     micro_batch_size=4, accumulation=1, environ={})


def test_a_plain_run_records_its_launch(tmp_path, quick_args):
    from photodialog.cli.main import main

    assert main(["train", *quick_args("max_steps=1", "train.batch_size=8"), "--out", str(tmp_path / "run")]) == 0
    launch = json.loads((tmp_path / "run" / "environment.json").read_text())["launch"]
    assert launch == {"engine": "single", "processes": 1, "effective_batch": 8, "micro_batch_size": 4,
                      "accumulation": 2, "launcher": "python"}
    assert "engine single on 1 process(es); effective batch 8" in (tmp_path / "run" / "train.log").read_text()


def _launch(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "accelerate.commands.launch", *argv], capture_output=True, text=True,
                          timeout=600, env=env)


def test_accelerate_cpu_flag_runs_one_process_and_says_so(tmp_path, quick_args):
    done = _launch(["--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    "-m", "photodialog", "train", *quick_args("max_steps=1"), "--out", str(tmp_path / "run")])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "asked for several processes but started one" in done.stderr
    launch = json.loads((tmp_path / "run" / "environment.json").read_text())["launch"]
    assert launch["processes"] == 1 and launch["launcher"] == "accelerate launch"
    assert "--multi_gpu" in launch["processes_requested_but_not_started"]
    assert "started one" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.slow  # two training processes
def test_the_documented_cpu_command_runs_two_processes(tmp_path, tiny_world):
    (command,) = re.findall(r"<!-- cpu launch.*?-->\n```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:3] == ["OMP_NUM_THREADS=1", "accelerate", "launch"]
    argv = [a.replace("runs/tiny-e2e-2cpu", str(tmp_path / "run")) for a in argv[3:]]
    overrides = [f"data.path={tiny_world}", "max_steps=1", "train.batch_size=8", "train.micro_batch_size=4",
                 "train.eval_every_epochs=1000", "model.image_loss_repeats=1", "train.warmup_steps=1", "--no-progress"]
    done = _launch([*argv, *overrides])
    assert done.returncode == 0, done.stderr[-3000:]
    launch = json.loads((tmp_path / "run" / "environment.json").read_text())["launch"]
    assert launch == {"engine": "ddp", "processes": 2, "effective_batch": 8, "micro_batch_size": 4, "accumulation": 1,
                      "launcher": "accelerate launch"}

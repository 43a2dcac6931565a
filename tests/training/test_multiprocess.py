"""The tiny recipe on two processes under `accelerate launch`.

Accelerate's ``--cpu`` flag starts several processes only through ``mpirun``; on a machine
without a GPU, ``--multi_gpu --num_processes 2`` starts two processes with torchrun and
Accelerate runs them as MULTI_CPU (gloo), which is what this test checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.cli.main import main


def sample_log(run: Path, rank: int) -> dict[int, list[int]]:
    rows = [json.loads(line) for line in (run / f"samples.rank{rank}.jsonl").read_text().splitlines()]
    return {row["step"]: row["indices"] for row in rows}


def test_two_processes_split_the_data_and_keep_the_step_semantics(tmp_path, quick_args):
    args = quick_args("max_steps=3", "train.batch_size=8", "train.micro_batch_size=4", "train.log_sample_ids=true")
    single = tmp_path / "single"
    assert main(["train", *args, "--output-dir", str(single)]) == 0

    double = tmp_path / "double"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "photodialog", "train", *args, "--output-dir", str(double)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launcher, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    rank0, rank1, reference = sample_log(double, 0), sample_log(double, 1), sample_log(single, 0)
    assert sorted(rank0) == sorted(rank1) == sorted(reference) == [1, 2, 3]  # same number of optimizer steps
    for step in reference:
        assert not set(rank0[step]) & set(rank1[step]), "both processes saw the same samples"
        assert len(rank0[step]) == len(rank1[step]) == 4
        assert sorted(rank0[step] + rank1[step]) == sorted(reference[step])  # the same effective batch of 8
    assert read_state(list_checkpoints(double)[-1]).step == 3


def test_two_processes_take_the_same_early_stopping_decision(tmp_path, quick_args):
    """Only the main process evaluates; the others must still stop when it stops, not before."""
    # train.lr must be positive; 1e-30 moves no weight by a representable amount that reaches the
    # outputs, so the (seeded) dev score stays the same: step 1 sets the best, step 2 does not
    # beat it and, with patience 1, must stop the run on every process.
    args = quick_args("max_steps=4", "train.batch_size=8", "train.micro_batch_size=4", "train.eval_every_steps=1",
                      "train.early_stopping_patience=1", "train.lr=1.0e-30")
    run = tmp_path / "run"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "photodialog", "train", *args, "--output-dir", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launcher, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    state = read_state(list_checkpoints(run)[-1])
    assert state.finished
    assert len(state.history) >= 1 and state.best_step >= 1
    assert "early stopping" in state.stop_reason
    assert state.step == 2 and state.best_step == 1
    assert [row["step"] for row in state.history] == [1, 2]


def test_ddp_resume_refuses_a_payload_in_the_files_every_process_reads(tmp_path, quick_args):
    """Under DDP every process reads the checkpoint's optimizer.pt and scheduler.pt (weights_only=True)
    and rng.json: a folder whose files carry a pickle payload (its manifest rewritten to match) is
    refused (exit code 2) before anything is loaded, and the payload never runs."""
    import pickle

    from photodialog.checkpoints import file_digest

    run = tmp_path / "run"

    def launcher(steps: int) -> list[str]:
        args = quick_args("train.batch_size=8", "train.micro_batch_size=4", f"train.max_steps={steps}")
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "photodialog", "train", *args, "--out", str(run)]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launcher(1), capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    last = list_checkpoints(run)[-1]
    marker = tmp_path / "PAYLOAD-RAN"
    manifest = json.loads((last / "manifest.json").read_text())
    for name in ("optimizer.pt", "scheduler.pt"):
        with open(last / name, "wb") as handle:
            pickle.dump({"state": {}, "param_groups": [], "last_epoch": 0, "x": _Payload(str(marker))}, handle)
        manifest["files"][name] = {"bytes": (last / name).stat().st_size, "sha256": file_digest(last / name)}
    (last / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([*launcher(2), "--resume"], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode != 0 and "exitcode  : 2" in done.stderr, done.stderr[-3000:]
    assert "optimizer.pt holds more than tensors" in done.stderr and "could run code" in done.stderr
    assert not marker.exists()


class _Payload:
    """Unpickling this creates ``marker``: what a hostile run folder would do."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _finite_on_each_process(rank: int, port: int, answers) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      OMP_NUM_THREADS="1")
    import torch
    from accelerate import Accelerator

    from photodialog.training.trainer import Trainer

    trainer = Trainer.__new__(Trainer)  # only its accelerator: _all_finite is what is checked
    trainer.accelerator = Accelerator(cpu=True)
    for name, losses in (("one NaN", [1.0, float("nan")]), ("both finite", [1.0, 2.0]), ("both NaN", [float("nan")] * 2)):
        answers[(rank, name)] = trainer._all_finite(torch.tensor(losses[rank]))


def test_a_nan_on_one_process_skips_the_step_on_every_process():
    """Each process decides to skip a step from the loss of all of them: with a NaN on one process only,
    neither steps (its NaN gradients would otherwise be averaged into every process's weights)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with mp.get_context("spawn").Manager() as manager:
        answers = manager.dict()
        mp.start_processes(_finite_on_each_process, args=(port, answers), nprocs=2, start_method="spawn")
        answers = dict(answers)
    assert answers == {(0, "one NaN"): False, (1, "one NaN"): False, (0, "both finite"): True, (1, "both finite"): True,
                       (0, "both NaN"): False, (1, "both NaN"): False}

"""FSDP and DeepSpeed ZeRO-2 and ZeRO-3 on two CPU processes (gloo): a run killed with SIGKILL resumes from its
sharded checkpoint and ends with the same weights and weight average as an uninterrupted run; a
run folder whose engine files carry a pickle payload is refused, and the payload never runs.

Each run is the tiny recipe under ``accelerate launch --config_file`` with the shipped accelerate
config (two processes, no mixed precision: the CPU has none), 3 optimizer steps of 4 samples. The
seed is one whose first steps give one process a micro-batch without a context photo, or without
a target photo, while the other's has one (``test_the_runs_meet_micro_batches_that_leave_a_part_out``):
without the idle parts of ``PhotoDialogModel.forward`` FSDP and DeepSpeed abort there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import photodialog
from photodialog.checkpoints import EMA_WEIGHTS, list_checkpoints, read_state

ACCELERATE_CONFIGS = Path(photodialog.__file__).parent / "configs" / "accelerate"
# Seed 13: in step 1 one process has context and target photos and the other neither, in step 2 a
# target photo, in step 3 a context photo (asserted below). The default seed meets such a batch in step 6.
STEPS = ["train.max_steps=3", "train.save_every_steps=2", "train.micro_batch_size=2", "train.seed=0", "train.log_sample_ids=true"]


def launch(engine: str, args: list[str], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE_CONFIGS / f"{engine}.yaml"),
            "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "photodialog", "train", *args, "--out", str(out), *extra]


def environment() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # DeepSpeed finds its CPU accelerator itself


def run(command: list[str], timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment())


def kill_minus_nine(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and every training process under it, as a crashed node would. torchrun
    starts each worker in a session of its own, so killing the launcher's group would leave them
    running (and finishing the run the test means to interrupt)."""
    import psutil  # a dependency of accelerate: lists the workers under the launcher

    processes = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for each in processes:
        try:
            each.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    process.wait()
    psutil.wait_procs(processes, timeout=30)


def last_files(run_dir: Path):
    # imports torch: reads the weights
    from safetensors.torch import load_file

    last = list_checkpoints(run_dir)[-1]
    return load_file(str(last / "trainable.safetensors")), load_file(str(last / EMA_WEIGHTS)), last


NEEDS_DEEPSPEED = pytest.mark.skipif(__import__("importlib").util.find_spec("deepspeed") is None, reason="needs the [deepspeed] extra")
ENGINES = [
    pytest.param("fsdp", id="fsdp"),
    pytest.param("deepspeed-zero2", id="deepspeed-zero2", marks=NEEDS_DEEPSPEED),
    pytest.param("deepspeed-zero3", id="deepspeed-zero3", marks=NEEDS_DEEPSPEED),
]


@pytest.fixture(scope="module")
def reference_run(quick_args, tmp_path_factory):
    """The uninterrupted 3-step run of an engine (made once per module): ``reference_run(engine)``."""
    made = {}

    def get(engine: str) -> Path:
        if engine not in made:
            out = tmp_path_factory.mktemp(engine) / "reference"
            done = run(launch(engine, quick_args(*STEPS), out))
            assert done.returncode == 0, done.stderr[-3000:]
            made[engine] = out
        return made[engine]

    return get


@pytest.mark.parametrize("engine", ENGINES)
def test_kill_minus_nine_then_resume_matches_uninterrupted(engine, tmp_path, quick_args, reference_run):
    args = quick_args(*STEPS)
    reference = reference_run(engine)

    killed = tmp_path / "killed"
    process = subprocess.Popen(launch(engine, args, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment())
    deadline = time.time() + 400
    try:
        while not list_checkpoints(killed) and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert list_checkpoints(killed), "the run wrote no checkpoint before the deadline"
    finally:
        kill_minus_nine(process)
    interrupted_at = read_state(list_checkpoints(killed)[-1]).step
    assert interrupted_at < 3, "the kill came too late to test anything"

    done = run(launch(engine, args, killed, "--resume"))
    assert done.returncode == 0, done.stderr[-3000:]
    ours, our_average, last = last_files(killed)
    theirs, their_average, _ = last_files(reference)
    assert read_state(last).step == 3
    assert json.loads((last / "engine" / "engine.json").read_text()) == {"engine": engine, "processes": 2}
    assert not (last / "optimizer.pt").exists()  # the optimizer state is the engine's, sharded
    assert ours.keys() == theirs.keys() and ours
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    assert int(our_average.pop("__updates__")) == 3 == int(their_average.pop("__updates__"))
    assert our_average.keys() == ours.keys()
    for name in our_average:
        assert torch.equal(our_average[name], their_average[name]), name
    assert any(not torch.equal(our_average[k], ours[k]) for k in ours)  # an average, not the last weights

    if engine in ("fsdp", "deepspeed-zero3"):  # eval and chat load the run like any other: the whole weights, the average in them
        from photodialog.system import load_system

        name = next(iter(our_average))
        loaded = dict(load_system(killed).model.named_parameters())[name]
        assert torch.equal(loaded.detach(), our_average[name].to(loaded.dtype))


def test_the_runs_meet_micro_batches_that_leave_a_part_out(tiny_world, reference_run):
    """In the runs above one process's micro-batch has a context photo (or a target photo) while the
    other's has none, read from the samples each process logged and the run's own formatter."""
    from photodialog.config import load_config
    from photodialog.data.samples import build_samples
    from photodialog.system import load_system
    from photodialog.training.data import load_split, training_dataset

    reference = reference_run("fsdp")
    config = load_config("tiny-e2e", [f"data.path={tiny_world}"])
    dataset = training_dataset(build_samples(load_split(config.data, "train")[0]), load_system(reference).formatter)
    logs = [{row["step"]: row["indices"] for row in map(json.loads, (reference / f"samples.rank{rank}.jsonl").read_text().splitlines())}
            for rank in (0, 1)]
    assert sorted(logs[0]) == sorted(logs[1]) == [1, 2, 3]
    uneven = {"context photo": [], "target photo": []}
    for step in (1, 2, 3):
        context = [any(dataset[i].context_photos for i in log[step]) for log in logs]
        target = [any(c.photo is not None and c.photo.path for i in log[step] for c in dataset[i].captions) for log in logs]
        for name, has in (("context photo", context), ("target photo", target)):
            if has[0] != has[1]:
                uneven[name].append(step)
    assert uneven == {"context photo": [1, 3], "target photo": [1, 3]}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_payload_in_any_engine_file_never_runs_on_resume_nor_on_loading(engine, tmp_path, quick_args, reference_run):
    """Every pickled file the engine wrote is read without unpickling code: a payload planted in any of
    them is refused by name; ``train --resume`` of a folder with one (its manifest rewritten to match,
    as anyone's folder would be) exits 2 before loading anything, and eval/chat/serve/export, which
    read the run's safetensors, load it; the payload runs nowhere."""
    from photodialog.checkpoints import file_digest
    from photodialog.system import load_system
    from photodialog.training import engines

    run_dir = tmp_path / "run"
    shutil.copytree(reference_run(engine), run_dir)
    last = list_checkpoints(run_dir)[-1]
    pickled = sorted(p for p in (last / "engine").rglob("*") if p.suffix in engines.PICKLED)
    names = {p.relative_to(last / "engine").as_posix() for p in pickled}
    if engine == "fsdp":
        assert names == {"optimizer.rank0.pt", "optimizer.rank1.pt"}
        hostile = last / "engine" / "optimizer.rank1.pt"  # read by one process only
    else:  # the case: the model states DeepSpeed's load_checkpoint reads first
        states = "mp_rank_00_model_states.pt" if engine == "deepspeed-zero2" else "zero_pp_rank_1_mp_rank_00_model_states.pt"
        assert {f"pytorch_model/{states}", "pytorch_model/zero_pp_rank_1_mp_rank_00_optim_states.pt", "random_states_1.pkl"} <= names
        hostile = last / "engine" / "pytorch_model" / states
    allowed = engines.safe_types(engines.Engine(engine, 2))
    assert engines.unsafe_file_problem(last / "engine", allowed) is None

    marker = tmp_path / "PAYLOAD-RAN"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    def plant(path: Path) -> bytes:
        original = path.read_bytes()
        state = torch.load(path, map_location="cpu", weights_only=False)  # the test's own file: trusted
        state["note"] = Payload()
        torch.save(state, path)
        return original

    for path in pickled:
        original = plant(path)
        problem = engines.unsafe_file_problem(last / "engine", allowed)
        assert problem is not None and str(path) in problem and "could run code" in problem, path
        path.write_bytes(original)
    assert not marker.exists()

    plant(hostile)
    manifest = json.loads((last / "manifest.json").read_text())
    key = hostile.relative_to(last).as_posix()
    manifest["files"][key] = {"bytes": hostile.stat().st_size, "sha256": file_digest(hostile)}
    (last / "manifest.json").write_text(json.dumps(manifest))
    done = run(launch(engine, quick_args(*STEPS[1:], "train.max_steps=4"), run_dir, "--resume"))
    # A process exits 2 with the message; torchrun then stops the other and reports the failed workers.
    assert done.returncode != 0 and "exitcode  : 2" in done.stderr, done.stderr[-3000:]
    assert "could run code" in done.stderr and hostile.name in done.stderr
    assert str(Path(photodialog.__file__).parent) not in done.stderr  # no traceback through photodialog's code
    load_system(run_dir)  # what eval, chat, serve and export read
    assert not marker.exists()


def test_a_sharded_checkpoint_is_not_resumed_on_one_process(tmp_path, quick_args, capsys):
    from photodialog.cli.main import main

    run_dir = tmp_path / "run"
    done = run(launch("fsdp", quick_args("train.max_steps=1", "train.micro_batch_size=2"), run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(["train", *quick_args("train.max_steps=2"), "--out", str(run_dir), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "fsdp on 2 process(es)" in err and "accelerate config" in err


@NEEDS_DEEPSPEED
@pytest.mark.slow  # extra evidence beside the per-engine kill tests, which CI runs: about 75 s
def test_zero3_trains_like_zero2(tmp_path, quick_args):
    """ZeRO-3 partitions every weight, ZeRO-2 none: the same 3 steps end with the same weights and
    average up to the order of the gradient sums (the bridge's gradient on the text encoder's token
    embedding included), while one step moves them by far more; the dev evaluation at step 2 (every
    process, the average swapped in) scores the same."""
    args = quick_args(*STEPS, "train.eval_every_steps=2")
    for engine in ("deepspeed-zero2", "deepspeed-zero3"):
        done = run(launch(engine, args, tmp_path / engine))
        assert done.returncode == 0, done.stderr[-3000:]
    zero2, zero2_average, last = last_files(tmp_path / "deepspeed-zero2")
    zero3, zero3_average, _ = last_files(tmp_path / "deepspeed-zero3")
    from safetensors.torch import load_file

    before = load_file(str(list_checkpoints(tmp_path / "deepspeed-zero2")[0] / "trainable.safetensors"))
    assert zero3.keys() == zero2.keys() and zero3_average.keys() == zero2_average.keys()
    assert all(zero3[name].shape == zero2[name].shape for name in zero2)
    step = max(float((zero2[name] - before[name]).abs().max()) for name in zero2)
    apart = max(float((zero3[name] - zero2[name]).abs().max()) for name in zero2)
    apart_average = max(float((zero3_average[name] - zero2_average[name]).abs().max()) for name in zero2)
    assert step > 1e-4 and apart < step / 50 and apart_average < step / 50, (step, apart, apart_average)
    embedding = "generator.text_encoder.embeddings.token_embedding.weight"  # read by the bridge outside its module
    moved = float((zero2[embedding] - before[embedding]).abs().max())
    assert moved > 50 * float((zero3[embedding] - zero2[embedding]).abs().max()), moved
    from photodialog.training.run_files import read_metrics

    dev = [[row for row in read_metrics(tmp_path / engine) if row.get("kind") == "dev"] for engine in ("deepspeed-zero2", "deepspeed-zero3")]
    assert [row["step"] for row in dev[0]] == [row["step"] for row in dev[1]] == [2]
    assert dev[1][0]["dev_loss"] == pytest.approx(dev[0][0]["dev_loss"], abs=1e-5)

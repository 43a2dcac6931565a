"""Every command's ``--json`` stdout parses, with the ``deepspeed`` extra importable.

DeepSpeed adds a stdout log handler when imported and warns through it ("Setting accelerator to
CPU") on a machine without a GPU: the CLI sends every library log to stderr. Each command runs in
a fresh interpreter, as a user's pipe would, so that the libraries are imported as they are there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photodialog.cli.main import build_parser

TINY_RUN_OVERRIDES = ["max_steps=1", "train.batch_size=4", "train.micro_batch_size=4", "model.image_loss_repeats=1"]


def json_commands() -> set[tuple[str, ...]]:
    """Every (sub)command path whose parser has a ``--json`` flag."""
    found = set()

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if "--json" in action.option_strings:
                found.add(path)
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


def _args(command: tuple[str, ...], world: Path, run: Path, tmp: Path) -> list[str]:
    """A small, quick invocation of ``command`` (its ``--json`` added by the caller)."""
    photo = next((world / "photos").rglob("*.png"))
    return {
        ("bench", "bridge"): ["--captions", "3", "--caption-tokens", "4", "--width", "8", "--llm-vocab", "300",
                              "--sd-vocab", "400", "--sd-length", "16", "--repeats", "1", "--threads", "1"],
        ("bench", "chat"): ["--checkpoint", str(run), "--new-tokens", "2", "--diffusion-steps", "1", "--repeats", "1",
                            "--threads", "1", "--device", "cpu"],
        ("bench", "step"): ["--data", str(world), "--batch-size", "4", "--steps", "1", "--warmup", "0", "--threads", "1",
                            "--device", "cpu", "model.image_loss_repeats=1"],
        ("bench", "startup"): ["--repeats", "1"],
        ("bench", "memory"): [],
        ("bench", "generator"): ["--settings", "none", "--world", str(world), "--work", str(tmp / "work")],
        ("bench", "llm"): ["--run", str(run), "--no-progress"],
        ("chat",): ["--checkpoint", str(run), "--device", "cpu", "--message", "look", "--photo", str(photo),
                    "--diffusion-steps", "1", "--out", str(tmp / "chat")],
        ("inspect", "gradients"): ["--config", "tiny-e2e", f"data.path={world}", "train.batch_size=4",
                                   "train.micro_batch_size=4", "model.image_loss_repeats=1"],
        ("data", "check"): [str(world)],
        ("eval",): ["--checkpoint", str(run), "--data", str(world), "--split", "test", "--seeds", "0", "--max-samples", "4",
                    "--diffusion-steps", "1", "--device", "cpu", "--no-progress", "--out", str(tmp / "eval" / "result.json")],
        ("data", "stats"): [str(world)],
    }[command]


SLOW = {("bench", "generator"), ("bench", "llm"), ("bench", "step"), ("bench", "chat"), ("chat",)}


@pytest.fixture(scope="module")
def probed_world(tiny_world, tmp_path_factory):
    from photodialog.data.synth.probe import train_probe

    world = tmp_path_factory.mktemp("json-world") / "world"
    shutil.copytree(tiny_world, world)
    train_probe(world, epochs=1, threads=1, progress=False)
    return world


def _run_json(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run([sys.executable, "-m", "photodialog", *argv, "--json"], capture_output=True, text=True,
                          env=env, timeout=900)


FAST = [("bench", "bridge"), ("bench", "memory"), ("bench", "startup"), ("data", "check"), ("data", "stats"),
        ("eval",), ("inspect", "gradients")]


def test_every_json_command_has_a_case():
    assert json_commands() == set(FAST) | SLOW


@pytest.mark.parametrize("command", [*FAST, *(pytest.param(c, marks=pytest.mark.slow) for c in sorted(SLOW))], ids=" ".join)
def test_json_stdout_parses_with_deepspeed_importable(command, probed_world, tiny_run, tmp_path):
    pytest.importorskip("deepspeed")
    done = _run_json([*command, *_args(command, probed_world, tiny_run, tmp_path)])
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = json.loads(done.stdout)  # the whole of stdout, nothing before or after the JSON
    if command == ("eval",):  # the result itself, as --out holds it
        assert parsed == json.loads((tmp_path / "eval" / "result.json").read_text())


def test_a_library_log_handler_on_stdout_writes_to_stderr(capsys):
    import logging

    from photodialog.cli.main import send_library_logs_to_stderr

    send_library_logs_to_stderr()
    logger = logging.getLogger("photodialog-test-library")  # made after, as DeepSpeed's is at import
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(sys.stdout))
    logger.warning("Setting accelerator to CPU")
    captured = capsys.readouterr()
    assert captured.out == "" and "Setting accelerator to CPU" in captured.err

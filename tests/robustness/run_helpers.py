"""Builders for the run-fault tests: small checkpoints written by the real writer, damaged on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from photodialog.checkpoints import TrainState
from photodialog import checkpoints as ckpt


def tiny_parts():
    """A model, optimizer and scheduler small enough to checkpoint in milliseconds."""
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer, scheduler


def save_step(run_dir: Path, step: int, *, best_step: int = -1, keep_last: int = 0, parts=None) -> Path:
    """A checkpoint of ``tiny_parts`` at ``step`` whose state names ``best_step`` as the best."""
    model, optimizer, scheduler = parts or tiny_parts()
    state = TrainState(step=step, best_step=best_step)
    weights = dict(model.named_parameters())
    return ckpt.save_checkpoint(run_dir, weights, optimizer, scheduler, state, "train: {}\n", keep_last=keep_last)


def cut_short(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def pointer(run_dir: Path) -> str:
    return (run_dir / "checkpoints" / "best").read_text(encoding="utf-8").strip()


def manifest_files(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]

"""Checkpoints: only what trains, written atomically, the last N and the best kept.

A run folder::

    RUN/config.yaml           the resolved recipe
    RUN/environment.json      versions of Python, torch and the Hugging Face stack
    RUN/base/                 the tiny preset's random base parts (paper: read from the hub)
    RUN/checkpoints/step-000200/
        state.json            step, epoch, data position, tau, metrics, best so far
        config.yaml           the recipe, so a checkpoint folder stands on its own
        trainable.safetensors the parameters that train (LoRA adapters, full parts), by name
        optimizer.pt scheduler.pt rng.pt   what --resume needs
    RUN/checkpoints/best      a text file naming the best checkpoint folder

A checkpoint is first written to ``step-N.tmp`` and renamed when complete, so a kill at any
moment leaves either the previous checkpoints or the new one, never half of one. Reading a
checkpoint (list, best, resolve, load weights) is in ``photodialog.checkpoints``, the library.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from photodialog.checkpoints import (  # noqa: F401  (the reading side lives in the library; names kept here)
    BEST_POINTER,
    CHECKPOINTS,
    EMA_WEIGHTS,
    WEIGHTS,
    TrainState,
    best_checkpoint,
    checkpoint_dir,
    list_checkpoints,
    load_trainable,
    read_state,
    resolve_checkpoint,
    run_dir_of,
)


def save_checkpoint(run_dir: Path, weights: dict[str, torch.Tensor], optimizer, scheduler, state: TrainState,
                    config_text: str, *, keep_last: int, average: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a complete checkpoint atomically; prune old ones (never the best).

    ``weights`` are the trainable parameters; ``average`` their moving average, if kept.
    """
    from safetensors.torch import save_file

    final = checkpoint_dir(run_dir, state.step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({name: w.detach().cpu().contiguous() for name, w in weights.items()}, str(tmp / WEIGHTS))
    if average is not None:
        save_file({name: w.detach().cpu().contiguous() for name, w in average.items()}, str(tmp / EMA_WEIGHTS))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "config.yaml").write_text(config_text, encoding="utf-8")
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    prune_checkpoints(run_dir, keep_last)
    return final


def mark_best(run_dir: Path, step: int) -> None:
    pointer = run_dir / CHECKPOINTS / BEST_POINTER
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(checkpoint_dir(run_dir, step).name, encoding="utf-8")
    os.replace(tmp, pointer)


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    best = best_checkpoint(run_dir)
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        if best is None or old.resolve() != best.resolve():
            shutil.rmtree(old, ignore_errors=True)
    for stale in (run_dir / CHECKPOINTS).glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def write_state(folder: Path, state: TrainState) -> None:
    """Replace a checkpoint's state.json atomically (e.g. to mark the run finished)."""
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    os.replace(tmp, folder / "state.json")


# ------------------------------------------------------------ RNG

def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())

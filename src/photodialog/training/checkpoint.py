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
moment leaves either the previous checkpoints or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from photodialog.errors import UserError

CHECKPOINTS = "checkpoints"
BEST_POINTER = "best"
WEIGHTS = "trainable.safetensors"
EMA_WEIGHTS = "ema.safetensors"


@dataclass
class TrainState:
    """Where a run is; saved with every checkpoint and restored by ``--resume``."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches already consumed in the current epoch
    tau: float = 1.0
    best_metric: float | None = None
    best_step: int = -1
    evals_without_improvement: int = 0
    bad_steps_in_row: int = 0
    bad_steps_total: int = 0
    finished: bool = False
    stop_reason: str = ""
    history: list[dict] = field(default_factory=list)  # dev evaluations

    @classmethod
    def from_json(cls, data: dict) -> "TrainState":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"step-{step:07d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp") and (p / "state.json").is_file())


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


def best_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / BEST_POINTER
    if pointer.is_file():
        candidate = run_dir / CHECKPOINTS / pointer.read_text(encoding="utf-8").strip()
        if (candidate / "state.json").is_file():
            return candidate
    return None


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    best = best_checkpoint(run_dir)
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        if best is None or old.resolve() != best.resolve():
            shutil.rmtree(old, ignore_errors=True)
    for stale in (run_dir / CHECKPOINTS).glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def load_trainable(model: torch.nn.Module, folder: Path, *, file: str = WEIGHTS) -> None:
    """Copy a checkpoint's trained parameters (or their average, ``file=EMA_WEIGHTS``) into ``model``."""
    from safetensors.torch import load_file

    weights = load_file(str(folder / file))
    weights.pop("__updates__", None)
    params = dict(model.named_parameters())
    missing = [name for name in weights if name not in params]
    if missing:
        raise UserError(f"{folder} holds weights this model does not have (e.g. {missing[0]}): was it trained with another config?")
    with torch.no_grad():
        for name, value in weights.items():
            target = params[name]
            if target.shape != value.shape:
                raise UserError(f"{folder}: '{name}' has shape {tuple(value.shape)}, the model expects {tuple(target.shape)}")
            target.copy_(value.to(target.dtype))


def write_state(folder: Path, state: TrainState) -> None:
    """Replace a checkpoint's state.json atomically (e.g. to mark the run finished)."""
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    os.replace(tmp, folder / "state.json")


def read_state(folder: Path) -> TrainState:
    return TrainState.from_json(json.loads((folder / "state.json").read_text(encoding="utf-8")))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a path to one, or to a run folder (its best, else its latest)."""
    path = Path(path).expanduser()
    if not path.exists():
        # Said here, once, so that train (text_from), eval, chat and serve all give the same message.
        raise UserError(f"checkpoint not found: {path}; pass a run folder (runs/NAME) or one of its checkpoints")
    if (path / "state.json").is_file() and (path / WEIGHTS).is_file():
        return path
    if (path / CHECKPOINTS).is_dir():
        found = best_checkpoint(path) or (list_checkpoints(path) or [None])[-1]
        if found is not None:
            return found
        raise UserError(f"the run folder {path} has no complete checkpoint yet; train longer or pass another folder")
    raise UserError(f"{path} is neither a checkpoint folder (state.json + {WEIGHTS}) nor a run folder with checkpoints/")


def run_dir_of(checkpoint: Path) -> Path:
    return checkpoint.parent.parent


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

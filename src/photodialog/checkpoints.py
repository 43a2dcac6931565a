"""Reading checkpoints: where they are in a run folder, which is the best, and their weights.

This is the library side of a run folder (eval, chat, serve, bench and the demo read
checkpoints; only ``photodialog.training.checkpoint`` writes them). A run folder::

    RUN/checkpoints/step-0000200/   state.json, config.yaml, trainable.safetensors, ...
    RUN/checkpoints/best            a text file naming the best checkpoint folder
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from photodialog.errors import UserError

CHECKPOINTS = "checkpoints"
BEST_POINTER = "best"
WEIGHTS = "trainable.safetensors"
EMA_WEIGHTS = "ema.safetensors"


@dataclass
class TrainState:
    """Where a run is; saved with every checkpoint (``state.json``) and restored by ``--resume``.

    ``step`` counts optimizer steps; ``batches_in_epoch`` the micro-batches already consumed in
    the current epoch; ``tau`` is the STGS temperature (Eq. 5) at that step; ``history`` holds
    the dev evaluations (one dict of metrics each).
    """

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
        """The state in ``data`` (a parsed state.json); keys of other versions are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """The folder of the checkpoint at optimizer step ``step`` (it may not exist)."""
    return run_dir / CHECKPOINTS / f"step-{step:07d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run, oldest first (a ``.tmp`` folder is never complete)."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp") and (p / "state.json").is_file())


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``checkpoints/best`` names, or None when there is none (or it is gone)."""
    pointer = run_dir / CHECKPOINTS / BEST_POINTER
    if pointer.is_file():
        candidate = run_dir / CHECKPOINTS / pointer.read_text(encoding="utf-8").strip()
        if (candidate / "state.json").is_file():
            return candidate
    return None


def load_trainable(model: torch.nn.Module, folder: Path, *, file: str = WEIGHTS) -> None:
    """Copy a checkpoint's trained parameters (or their average, ``file=EMA_WEIGHTS``) into ``model``.

    Raises ``UserError`` when the file holds a parameter the model lacks or one of another shape
    (a checkpoint of another config).
    """
    from safetensors.torch import load_file  # only needed when weights are read, not to list checkpoints

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


def read_state(folder: Path) -> TrainState:
    """The ``TrainState`` saved in a checkpoint folder's state.json."""
    return TrainState.from_json(json.loads((folder / "state.json").read_text(encoding="utf-8")))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a path to one, or to a run folder (its best, else its latest).

    Raises ``UserError`` when the path does not exist, or is neither a checkpoint nor a run
    folder with a complete checkpoint.
    """
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
    """The run folder a checkpoint folder belongs to (``RUN/checkpoints/step-N`` -> ``RUN``)."""
    return checkpoint.parent.parent

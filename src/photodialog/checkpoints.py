"""Reading checkpoints: where they are in a run folder, which is the best, and their weights.

This is the library side of a run folder (eval, chat, serve, bench and the demo read
checkpoints; only ``photodialog.training.checkpoint`` writes them). A run folder::

    RUN/checkpoints/step-0000200/   state.json, config.yaml, trainable.safetensors, ..., manifest.json
    RUN/checkpoints/best            a text file naming the best checkpoint folder

**Whole checkpoints only.** ``manifest.json``, written last, gives the size and SHA-256 of every
other file but state.json (which is replaced atomically on its own, and only has to parse).
A folder whose files do not match it (0-byte files after a power cut, a safetensors file cut
short) is *broken*: ``list_checkpoints`` leaves it out with a warning naming it, so --resume,
eval, chat and serve use the previous whole one. Folders of older versions, without a
manifest, are checked for empty files and for safetensors files shorter than their header says.

**The best checkpoint** is derived from the newest whole checkpoint's state (``best_step``, or
that checkpoint itself when the run has no dev score); ``checkpoints/best`` is a copy of that
answer for people and other tools, and is not trusted over the state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError

from photodialog.errors import UserError

CHECKPOINTS = "checkpoints"
BEST_POINTER = "best"
WEIGHTS = "trainable.safetensors"
EMA_WEIGHTS = "ema.safetensors"
MANIFEST = "manifest.json"
STATE = "state.json"

log = logging.getLogger("photodialog.checkpoints")
_warned: set[tuple[str, str]] = set()  # (folder, problem) already reported in this process


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
    samples_in_epoch: int = -1  # the same position in samples (-1: written by a version without it)
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


def step_folders(run_dir: Path) -> list[Path]:
    """Every ``step-N`` folder of a run, whole or broken, oldest first (never a ``.tmp`` one)."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The whole checkpoints of a run, oldest first; a broken one is left out with a warning."""
    whole = []
    for folder in step_folders(run_dir):
        problem = checkpoint_problem(folder)
        if problem is None:
            whole.append(folder)
        elif (str(folder), problem) not in _warned:
            _warned.add((str(folder), problem))
            log.warning("skipping the broken checkpoint %s (%s); the previous whole one is used", folder, problem)
    return whole


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_problem(folder: Path, *, hashes: bool = False) -> str | None:
    """Why checkpoint ``folder`` is not whole, or None. ``hashes``: also compare SHA-256 sums
    (reads every file; --resume does, loading for inference checks sizes only)."""
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            return f"{STATE} holds no step"
    except FileNotFoundError:
        return f"no {STATE}"
    except (OSError, ValueError) as err:
        return f"{STATE} is unreadable ({err.__class__.__name__})"
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return _legacy_problem(folder)
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{MANIFEST} is unreadable"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != expected.get("bytes"):
            return f"{name} has {size} bytes, the manifest says {expected.get('bytes')}"
        if hashes and file_digest(path) != expected.get("sha256"):
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def _legacy_problem(folder: Path) -> str | None:
    """Checks for a folder written before manifests: no empty file, safetensors not cut short."""
    if not (folder / WEIGHTS).is_file():
        return f"no {WEIGHTS}"
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.stat().st_size == 0:
            return f"{path.name} is empty"
        if path.suffix == ".safetensors":
            problem = safetensors_problem(path)
            if problem:
                return problem
    return None


def safetensors_problem(path: Path) -> str | None:
    """Whether a safetensors file is as long as its header says (a cut-short file is not)."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (header_bytes,) = struct.unpack("<Q", handle.read(8))
            if header_bytes > size - 8:
                return f"{path.name} is cut short (its header alone needs {header_bytes} bytes)"
            header = json.loads(handle.read(header_bytes))
        ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
    except (struct.error, ValueError, OSError):
        return f"{path.name} is not a readable safetensors file"
    except (AttributeError, KeyError, IndexError, TypeError):
        # A header that parses but is malformed (an entry without data_offsets) is not what a cut-short
        # write leaves: the checkpoint is listed, and reading it (read_weights) says what is wrong.
        return None
    expected = 8 + header_bytes + max(ends, default=0)
    if size < expected:
        return f"{path.name} is cut short ({size} of {expected} bytes)"
    return None


def read_weights(path: Path, advice: str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, by name: the one place weights files are read.

    Raises ``UserError`` naming the file, what is wrong with it and ``advice`` (what to do) when
    it is missing, unreadable, or malformed (overlapping offsets, a shape whose size overflows, a
    header entry without ``data_offsets``: safetensors' ``SafetensorError``).
    """
    # imports safetensors' torch half: only reading weights needs it
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:  # SafetensorError is not an OSError
        raise UserError(f"{path} cannot be read ({err}); it is damaged: {advice}") from None


def best_checkpoint(run_dir: Path) -> Path | None:
    """The best whole checkpoint of a run, or None when it has none.

    Derived from the newest whole checkpoint's state: the step its dev evaluations chose
    (``best_step``), or, with no dev score, that newest checkpoint itself. Only when the chosen
    step is gone (pruned by an older version) does the ``checkpoints/best`` pointer decide.
    """
    whole = list_checkpoints(run_dir)
    if not whole:
        return None
    newest = whole[-1]
    best_step = read_state(newest).best_step
    if best_step < 0:
        return newest
    chosen = checkpoint_dir(run_dir, best_step)
    if chosen in whole:
        return chosen
    pointed = _pointer_target(run_dir)
    fallback = pointed if pointed in whole else newest
    log.warning("the best checkpoint (step %d) named by %s is gone or broken; using %s", best_step, newest, fallback)
    return fallback


def _pointer_target(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / BEST_POINTER
    try:
        return run_dir / CHECKPOINTS / pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def load_trainable(model: torch.nn.Module, folder: Path, *, file: str = WEIGHTS) -> None:
    """Copy a checkpoint's trained parameters (or their average, ``file=EMA_WEIGHTS``) into ``model``.

    Raises ``UserError`` when the file cannot be read, holds a parameter the model lacks or one
    of another shape, or lacks one that this config trains (``requires_grad``).
    """
    weights = read_weights(folder / file, "use another checkpoint of the run")
    weights.pop("__updates__", None)
    params = dict(model.named_parameters())
    unknown = [name for name in weights if name not in params]
    if unknown:
        raise UserError(f"{folder} holds weights this model does not have (e.g. {unknown[0]}): was it trained with another config?")
    # Every parameter this config trains must be there: a missing one would stay at its random start.
    missing = sorted(name for name, p in params.items() if p.requires_grad and name not in weights)
    if missing:
        raise UserError(
            f"{folder / file} lacks {len(missing)} of the {sum(p.requires_grad for p in params.values())} trained tensors "
            f"of this model (e.g. {missing[0]}): it is incomplete or from another config; use another checkpoint"
        )
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
    if any((path / name).is_file() for name in (STATE, WEIGHTS, MANIFEST)):  # a checkpoint folder, whole or not
        problem = checkpoint_problem(path)
        if problem:
            earlier = [p.name for p in list_checkpoints(run_dir_of(path))]
            hint = f"; the run's whole checkpoints: {', '.join(earlier)}" if earlier else ""
            raise UserError(f"the checkpoint {path} is broken ({problem}){hint}")
        return path
    if (path / CHECKPOINTS).is_dir():
        found = best_checkpoint(path)
        if found is not None:
            return found
        raise UserError(f"the run folder {path} has no complete checkpoint yet; train longer or pass another folder")
    raise UserError(f"{path} is neither a checkpoint folder (state.json + {WEIGHTS}) nor a run folder with checkpoints/")


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint folder belongs to (``RUN/checkpoints/step-N`` -> ``RUN``)."""
    return checkpoint.parent.parent

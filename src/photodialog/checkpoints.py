"""Checkpoints, read and written: where they are in a run folder, which is the best, their weights,
and how the trainer writes them (only what trains, atomically, the last N and the best kept).

A run folder::

    RUN/config.yaml           the resolved recipe
    RUN/environment.json      versions of Python, torch and the Hugging Face stack
    RUN/base/                 the tiny preset's random base parts (paper: read from the hub)
    RUN/checkpoints/step-000200/
        state.json            step, epoch, data position, tau, metrics, best so far
        config.yaml           the recipe, so a checkpoint folder stands on its own
        trainable.safetensors the parameters that train (LoRA adapters, full parts), by name
        optimizer.pt scheduler.pt what --resume needs (tensors only: read with weights_only=True)
        rng.json              the random generators' states (plain numbers)
        engine/               under FSDP or DeepSpeed only: every process's shard of the optimizer
                              state (DeepSpeed: its own checkpoint, weights too) and its generators
                              (``training/engines.py``; then there is no optimizer.pt)
        manifest.json         size and SHA-256 of every file but state.json, written last
    RUN/checkpoints/best      a text file naming the best checkpoint folder

**Reading** (eval, chat, serve, bench, the demo, --resume). **Whole checkpoints only.**
``manifest.json``, written last, gives the size and SHA-256 of every other file but state.json
(which is replaced atomically on its own, and only has to parse). A folder whose files do not
match it (0-byte files after a power cut, a safetensors file cut short) is *broken*:
``list_checkpoints`` leaves it out with a warning naming it, so --resume, eval, chat and serve use
the previous whole one. Folders of older versions, without a manifest, are checked for empty
files and for safetensors files shorter than their header says.

**The best checkpoint** is derived from the newest whole checkpoint's state (``best_step``, or
that checkpoint itself when the run has no dev score); ``checkpoints/best`` is a copy of that
answer for people and other tools, and is not trusted over the state.

**Writing** (the trainer). A checkpoint is first written to ``step-N.tmp`` and renamed when
complete, so a kill at any moment leaves either the previous checkpoints or the new one, never
half of one; the manifest catches what a power cut can still do to files the OS had not written
yet. Pruning renames a folder away before deleting it, so a kill then leaves no half-deleted
checkpoint. Nothing read back can run code: no pickle beyond ``torch.load(weights_only=True)``,
under a sharding engine ``engine/`` too (``training/engines.py: load_engine_state``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import pickle
import random
import shutil
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from photodialog.errors import UserError
from photodialog.files import save_tensors, write_text

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


# ---- writing (the trainer) ----

train_log = logging.getLogger("photodialog.train")  # what the run does to its own folder, in its log
OPTIMIZER, SCHEDULER, RNG = "optimizer.pt", "scheduler.pt", "rng.json"
DELETING = ".deleting.tmp"  # a pruned folder while it is deleted (cleared on the next prune)


def start_checkpoint(run_dir: Path, step: int) -> Path:
    """The empty folder (``step-N.tmp``) in which the checkpoint of ``step`` is written before it is
    renamed; made afresh. Under a sharding engine every process then writes its shard into it."""
    tmp = tmp_dir(run_dir, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def tmp_dir(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` is written before it is renamed (``step-N.tmp``)."""
    final = checkpoint_dir(run_dir, step)
    return final.with_name(final.name + ".tmp")


def save_checkpoint(run_dir: Path, weights: dict[str, torch.Tensor], optimizer, scheduler, state: TrainState,
                    config_text: str, *, keep_last: int, average: dict[str, torch.Tensor] | None = None,
                    started: bool = False) -> Path:
    """Write a complete checkpoint atomically; prune old ones (never the best).

    ``weights`` are the trainable parameters; ``average`` their moving average, if kept.
    ``optimizer`` None: its state is kept elsewhere (a sharding engine's ``engine/``, written into
    the folder of ``start_checkpoint`` before this call, with ``started=True``).
    Raises ``UserError`` when the disk is full (the earlier checkpoints are left as they were).
    """
    final = checkpoint_dir(run_dir, state.step)
    tmp = tmp_dir(run_dir, state.step)
    if not started:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_folder(tmp, weights, optimizer, scheduler, state, config_text, average)
    except BaseException as err:  # safetensors' SafetensorError is a bare Exception; Ctrl-C too: no .tmp left
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_disk_full(err):
            raise
        earlier = list_checkpoints(run_dir)
        kept = f"the earlier checkpoint {earlier[-1]} is intact" if earlier else "no earlier checkpoint exists"
        raise UserError(f"no space left on the device while writing the checkpoint of step {state.step} in {run_dir}; "
                        f"{kept}. Free some space (or lower train.keep_last), then run again with --resume") from None
    if final.exists():
        _remove(final)
    os.replace(tmp, final)
    _fsync_path(final.parent)  # the rename itself survives a power cut
    prune_checkpoints(run_dir, keep_last)
    return final


def _write_folder(tmp: Path, weights, optimizer, scheduler, state: TrainState, config_text: str, average) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    save_tensors(weights, tmp / WEIGHTS)
    if average is not None:
        save_tensors(average, tmp / EMA_WEIGHTS)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER)
    torch.save(scheduler.state_dict(), tmp / SCHEDULER)
    (tmp / RNG).write_text(json.dumps(rng_state()), encoding="utf-8")
    (tmp / "config.yaml").write_text(config_text, encoding="utf-8")
    (tmp / STATE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    # Last: the manifest vouches for the files above (state.json is rewritten on its own later).
    files = {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
             for p in sorted(tmp.rglob("*")) if p.is_file() and p.name != STATE}
    (tmp / MANIFEST).write_text(json.dumps({"format": 1, "files": files}, indent=2), encoding="utf-8")
    _fsync_dir(tmp)


def _is_disk_full(err: BaseException) -> bool:
    # safetensors reports a full disk as its own SafetensorError carrying the OS message, not an OSError.
    return getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(err) or "os error 28" in str(err)


def mark_best(run_dir: Path, step: int) -> None:
    """Point ``checkpoints/best`` at step ``step`` (written beside and renamed)."""
    write_text(run_dir / CHECKPOINTS / BEST_POINTER, checkpoint_dir(run_dir, step).name)


def sync_best_pointer(run_dir: Path) -> Path | None:
    """Rewrite ``checkpoints/best`` from the state (``best_checkpoint``) if it says otherwise;
    the best checkpoint. Called when a run starts: a kill between saving a checkpoint and
    moving the pointer leaves it behind."""
    best = best_checkpoint(run_dir)
    pointer = run_dir / CHECKPOINTS / BEST_POINTER
    if best is not None and (not pointer.is_file() or pointer.read_text(encoding="utf-8").strip() != best.name):
        train_log.info("checkpoints/best now names %s, as the run's state says", best.name)
        write_text(pointer, best.name)
    return best


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Delete whole checkpoints beyond the newest ``keep_last`` (0: keep all), never the best
    (by the state, nor the one the pointer names), and what earlier kills left half-written."""
    folder = run_dir / CHECKPOINTS
    for stale in list(folder.glob("*.tmp")):
        _remove(stale)
    protected = {best_checkpoint(run_dir), _pointer(run_dir)}
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        if old not in protected:
            _remove(old)


def _pointer(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / BEST_POINTER
    return run_dir / CHECKPOINTS / pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None


def _remove(path: Path) -> None:
    """Delete a file or folder; a folder is first renamed to ``*.deleting.tmp`` so that a kill
    halfway never leaves a step folder with some of its files."""
    if path.is_dir():
        doomed = path if path.name.endswith(".tmp") else path.with_name(path.name + DELETING)
        if doomed != path:
            shutil.rmtree(doomed, ignore_errors=True)
            os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_state(folder: Path, state: TrainState) -> None:
    """Replace a checkpoint's state.json atomically (e.g. to mark the run finished)."""
    write_text(folder / STATE, json.dumps(asdict(state), indent=2))


# ------------------------------------------------------------ RNG and the optimizer's state

def rng_state() -> dict:
    """The states of Python's, numpy's and torch's generators as plain JSON numbers."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state().tolist(),
            "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []}


def restore_rng(state: dict) -> None:
    """Set the generators from ``rng_state()``'s dict; raises ``ValueError``/``TypeError``/``KeyError`` on another shape."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss if gauss is None else float(gauss)))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((str(kind), np.asarray(keys, dtype=np.uint32), int(position), int(has_gauss), float(cached)))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def load_resume_state(folder: Path, optimizer, scheduler, *, generators: bool = True) -> None:
    """Restore the optimizer, scheduler and random generators of checkpoint ``folder``.

    ``optimizer`` None and ``generators`` False: a sharding engine restores those itself
    (``training/engines.load_engine_state``); only the scheduler is read here.

    Nothing here can run code: the .pt files are read with ``weights_only=True`` (tensors and
    plain containers only) and the generators' states are JSON. What was read is checked
    against what it must be; anything else is a ``UserError`` naming the file.
    """
    for name, target in ((OPTIMIZER, optimizer), (SCHEDULER, scheduler)):
        if target is None:
            continue
        loaded = _load_tensors_only(folder / name)
        needed = {"state", "param_groups"} if target is optimizer else {"last_epoch"}
        if not isinstance(loaded, dict) or not needed <= set(loaded):
            raise UserError(f"{folder / name} is not a saved {name.split('.')[0]} state; use another checkpoint or start afresh")
        try:
            target.load_state_dict(loaded)
        except (ValueError, KeyError, TypeError, RuntimeError) as err:
            raise UserError(f"{folder / name} does not fit this run's {name.split('.')[0]} ({err}); was the config changed?") from None
    if generators:
        _restore_rng_of(folder)


def _load_tensors_only(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # what weights_only=True raises for anything but tensors and containers
        raise UserError(f"{refusal(path, err)}. Use a checkpoint you trust, or start afresh") from None
    except (OSError, RuntimeError, EOFError) as err:
        raise UserError(f"{path} cannot be read ({err}); use another checkpoint of the run") from None


def refusal(path: Path, err: pickle.UnpicklingError) -> str:
    """What to say of a file that ``torch.load(weights_only=True)`` refused with ``err``: the type
    it would have built (torch's own text also suggests loading it unsafely, which is not shown)."""
    found = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported" in line]
    return (f"{path} holds more than tensors and plain values, so it is not loaded (it could run code: "
            f"{found[0].rstrip('.') if found else 'not a tensor file'})")


def _restore_rng_of(folder: Path) -> None:
    path = folder / RNG
    if not path.is_file():
        # Versions before rng.json pickled numpy's state, which weights_only=True refuses; not
        # loading it costs only the exact random streams, so the run goes on.
        train_log.warning("%s has no %s (an older checkpoint): the random generators start afresh, so the resumed run "
                    "will not repeat an uninterrupted one exactly", folder, RNG)
        return
    try:
        restore_rng(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        raise UserError(f"{path} is not a saved random-generator state ({err.__class__.__name__}); use another checkpoint") from None


def _fsync_dir(folder: Path) -> None:
    for file in folder.iterdir():
        if file.is_dir():
            _fsync_dir(file)  # a sharding engine's engine/ folder
            continue
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    _fsync_path(folder)


def _fsync_path(folder: Path) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a folder cannot be opened on some systems (Windows); the files are synced
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)

"""Checkpoints: only what trains, written atomically, the last N and the best kept.

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

A checkpoint is first written to ``step-N.tmp`` and renamed when complete, so a kill at any
moment leaves either the previous checkpoints or the new one, never half of one; the manifest
catches what a power cut can still do to files the OS had not written yet. Pruning renames a
folder away before deleting it, so a kill then leaves no half-deleted checkpoint. Nothing read
back can run code: no pickle beyond ``torch.load(weights_only=True)``, under a sharding engine
``engine/`` too (``engines.load_engine_state``). Reading a checkpoint
(list, verify, best, resolve, load weights) is in ``photodialog.checkpoints``, the library.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import random
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from photodialog.checkpoints import (
    BEST_POINTER,
    CHECKPOINTS,
    EMA_WEIGHTS,
    MANIFEST,
    STATE,
    WEIGHTS,
    TrainState,
    best_checkpoint,
    checkpoint_dir,
    file_digest,
    list_checkpoints,
)
from photodialog.errors import UserError
from photodialog.files import save_tensors, write_text

log = logging.getLogger("photodialog.train")
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
        log.info("checkpoints/best now names %s, as the run's state says", best.name)
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
        log.warning("%s has no %s (an older checkpoint): the random generators start afresh, so the resumed run "
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

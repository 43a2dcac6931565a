"""The files of a run folder besides checkpoints: resolved config, environment, logs, metrics."""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from photodialog.checkpoints import CHECKPOINTS, MANIFEST, STATE, run_dir_of
from photodialog.files import write_text
from photodialog.output_files import folder_owner_problem

log = logging.getLogger("photodialog.train")

PACKAGES = ("torch", "transformers", "diffusers", "accelerate", "peft", "safetensors", "tokenizers", "numpy", "photodialog")


def environment() -> dict:
    """Versions of Python, the OS and the packages a result depends on."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    # torch is slow to import: only this path needs it
    import torch

    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def run_folder_problem(run_dir: Path) -> str | None:
    """Why ``train --out run_dir`` may not write there (None: it may).

    A run folder is train's own: a new or empty folder, or one an earlier ``train`` made (its
    owner file, or ``checkpoints/``, ``metrics.jsonl`` or ``environment.json`` of a version that
    wrote none). A checkpoint folder, or any other folder with files, is refused: train would
    replace its ``config.yaml``.
    """
    if any((run_dir / name).is_file() for name in (STATE, MANIFEST)):
        return (f"--out {run_dir} is a checkpoint folder, not a run folder: train would rewrite its config.yaml; give a "
                f"new folder (to continue its run: --out {run_dir_of(run_dir)} --resume)")
    return folder_owner_problem(run_dir, "train", made_before=_made_by_train)


def _made_by_train(folder: Path) -> bool:
    # environment.json: written by train alone, also by a run that stopped before its first step
    return (folder / CHECKPOINTS).is_dir() or any((folder / name).is_file() for name in ("metrics.jsonl", "environment.json"))


def write_environment(run_dir: Path, launch: dict | None = None) -> None:
    """Write ``RUN/environment.json``: versions of Python, torch and the Hugging Face stack, and the
    ``launch`` (engine, processes, effective batch: ``engines.launch_info``), atomically."""
    write_text(run_dir / "environment.json", json.dumps({**environment(), "launch": launch}, indent=2))


def attach_log_file(run_dir: Path) -> logging.Handler:
    """Send photodialog's log records (INFO and up) to ``RUN/train.log`` too; returns the handler to remove."""
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("photodialog")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


class MetricsLog:
    """Metrics as JSON lines (``metrics.jsonl``) and TensorBoard scalars (``tensorboard/``)."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.writer = None
        if enabled:
            try:
                # may be missing: the except below handles it
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional for the JSON log
                self.writer = None

    def write(self, record: dict, *, prefix: str = "train") -> None:
        """Append ``record`` (with time and kind) to metrics.jsonl and its numbers to TensorBoard."""
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), "kind": prefix, **record}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            step = record.get("step", 0)
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time"):
                    self.writer.add_scalar(f"{prefix}/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path, kind: str | None = None) -> list[dict]:
    """The records of ``RUN/metrics.jsonl`` (of one ``kind``: train, dev...), skipping a half-written last line."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # blank, or the last line of a run killed while writing it
    return [r for r in rows if isinstance(r, dict) and (kind is None or r.get("kind") == kind)]

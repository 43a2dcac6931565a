"""Which torch device a command runs on (the one place that reads ``--device``), with how many CPU threads, on what CPU."""

from __future__ import annotations

import platform
from contextlib import contextmanager
from pathlib import Path

from photodialog.errors import UserError


def resolve_device(name: str | None) -> str:
    """``auto`` or nothing: the best accelerator here (CUDA, then Apple's MPS), else the CPU.
    A name torch does not know, or a GPU that is not there, is a ``UserError`` that says what to pass."""
    # torch is slow to import: only this path needs it
    import torch

    if not name or name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    try:
        kind = torch.device(name).type
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but no CUDA GPU is available here; use --device cpu")
    return name


@contextmanager
def torch_threads(count: int | None):
    """Run with ``count`` torch CPU threads (unchanged when None or 0), then restore the previous
    setting: tests, benchmarks and the bundled files' rebuilds share a process with other work."""
    # torch is slow to import: only this path needs it
    import torch

    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Processor"): float sums, and so trained
    weights, are the same bytes only on the same CPU kind (and torch version)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def made_on() -> dict:
    """``{"cpu": ..., "torch": ...}``: what trained bytes depend on besides the command, for the
    record of a file rebuilt bit for bit (``made_elsewhere`` reads it back)."""
    # torch is slow to import: only this path needs it
    import torch

    return {"cpu": cpu_model(), "torch": torch.__version__}


def made_elsewhere(record: dict) -> str | None:
    """Why this machine cannot give a recorded file's bytes again (another or an unrecorded CPU
    kind, another torch version), or None if it can."""
    here = made_on()
    for key, value in here.items():
        if record.get(key) != value:
            return f"its {key} was {record.get(key) or 'not recorded'}, here it is {value}: float sums differ"
    return None

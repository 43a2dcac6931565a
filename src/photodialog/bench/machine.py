"""What a benchmark ran on: CPU, cores, load, memory, GPU, library versions (part of every JSON)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from photodialog.devices import cpu_model


def meminfo_bytes(field: str) -> int | None:
    """A /proc/meminfo field (e.g. ``MemAvailable``) in bytes; None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory_bytes(device: torch.device | str) -> int | None:
    """Free memory where ``device``'s tensors live: the GPU's free memory, or the host's available RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return meminfo_bytes("MemAvailable")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe_machine(device: torch.device | str = "cpu") -> dict:
    """A snapshot; call again at the end of a run and keep both loads (the machine may be shared)."""
    # the Hugging Face stack is slow to import: only this path needs it
    import diffusers
    import transformers

    device = torch.device(device)
    info = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15min": load_average(),
        "memory_total_bytes": meminfo_bytes("MemTotal"),
        "memory_available_bytes": meminfo_bytes("MemAvailable"),
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "diffusers": diffusers.__version__,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_bytes=int(props.total_memory), cuda=torch.version.cuda)
    return info


def choose_threads(requested: int | None) -> int:
    """Torch CPU threads for a benchmark: ``requested``, or the idle cores (at least 1).

    On a shared machine, OpenMP regions with more threads than idle cores stall waiting for a
    descheduled thread (measured here: a 0.2 ms op took 13 ms with 2 threads under load 5 on
    2 cores), so by default the benchmarks only use the cores that are free.
    """
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = load_average()
    busy = round(load[0]) if load else 0
    return max(1, min(cores, cores - busy))

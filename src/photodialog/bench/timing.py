"""Wall-clock timing with warmup and repeats; medians, because the machines are shared and noisy."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work so that a timer measures it (no-op on the CPU)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds of each measured run, summarised in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    samples_ms: list[float]

    @classmethod
    def of(cls, seconds: list[float]) -> "Timing":
        ms = [s * 1000.0 for s in seconds]
        return cls(round(statistics.median(ms), 4), round(min(ms), 4), round(max(ms), 4), len(ms), [round(m, 4) for m in ms])

    def to_dict(self) -> dict:
        return asdict(self)


def time_call(fn: Callable[[], object], device=None) -> float:
    """Seconds one call of ``fn`` takes, GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, device=None, max_seconds: float | None = None) -> Timing:
    """Run ``fn`` ``warmup`` times untimed (caches, lazy init), then ``repeats`` times timed.

    ``max_seconds`` stops the timed runs early (after at least one) once they have taken that
    long, so that slow baselines keep a benchmark's total time bounded.
    """
    for _ in range(warmup):
        fn()
    seconds: list[float] = []
    while len(seconds) < max(repeats, 1):
        seconds.append(time_call(fn, device))
        if max_seconds is not None and sum(seconds) >= max_seconds:
            break
    return Timing.of(seconds)


def measure_interleaved(fns: dict[str, Callable[[], object]], *, repeats: int = 5, warmup: int = 1, device=None) -> dict[str, Timing]:
    """Time several variants round-robin, so that a change of machine load hits them all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(repeats, 1)):
        for name, fn in fns.items():
            seconds[name].append(time_call(fn, device))
    return {name: Timing.of(values) for name, values in seconds.items()}

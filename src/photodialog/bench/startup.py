"""`photodialog bench startup`: how long the command takes to print its help, and what it imports.

Each run is a fresh interpreter (``python -m photodialog --help``), so the figure is what a
user waits for: interpreter start, the package's imports and building every command's parser.
The heavy libraries it loads (torch, transformers, diffusers...) are listed by one more child
that builds the parser and reads ``sys.modules``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

HEAVY = ("torch", "transformers", "diffusers", "accelerate", "gradio")
_LIST_IMPORTS = (
    "import sys\n"
    "from photodialog.cli.main import build_parser\n"
    "build_parser(['--help'])\n"
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
)


@dataclass
class StartupBenchSettings:
    """``repeats`` timed runs of ``photodialog --help`` after ``warmup`` untimed ones (file cache)."""

    repeats: int = 7
    warmup: int = 1


def _help_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "photodialog", "--help"], check=True, capture_output=True)
    return time.perf_counter() - start


def run_startup_bench(settings: StartupBenchSettings) -> dict:
    """Wall seconds of ``photodialog --help`` (median, min, max, every run) and the heavy libraries it imports."""
    for _ in range(settings.warmup):
        _help_seconds()
    runs = [_help_seconds() for _ in range(settings.repeats)]
    listed = subprocess.run([sys.executable, "-c", _LIST_IMPORTS], check=True, capture_output=True, text=True).stdout.strip()
    return {
        "benchmark": "startup",
        "command": f"{sys.executable} -m photodialog --help",
        "repeats": settings.repeats,
        "warmup": settings.warmup,
        "seconds": {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs},
        "heavy_imports": [name for name in listed.split(",") if name],
    }


def summary_lines(result: dict) -> list[str]:
    """The result in two lines."""
    seconds = result["seconds"]
    heavy = ", ".join(result["heavy_imports"]) or "none"
    return [
        f"photodialog --help: median {seconds['median']:.3f} s (min {seconds['min']:.3f}, max {seconds['max']:.3f}, "
        f"{result['repeats']} runs)",
        f"heavy libraries imported to build the parser: {heavy}",
    ]

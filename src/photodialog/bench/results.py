"""Writing benchmark results: JSON to stdout and/or a file, or a short human summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from photodialog.files import write_text


def emit(result: dict, *, as_json: bool, out: str | None, summary_lines: list[str]) -> None:
    """Write ``result`` as JSON to ``out`` (if given) and print JSON or the summary."""
    text = json.dumps(result, indent=2)
    if out:
        write_text(Path(out), text + "\n")  # atomic: a kill leaves the earlier result or the new one
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        print("\n".join(summary_lines))
        if out:
            print(f"JSON written to {out}")


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.3f} MiB"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def verdict(check: dict) -> str:
    return "met" if check["met"] else "NOT met"

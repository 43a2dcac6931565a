"""`photodialog data ...`: make, fetch, check and count datasets.

Each module in this package adds one subcommand with ``register(subparsers)`` (the same
convention as ``photodialog.cli``), so every part of the data tooling keeps its own file.
"""

from __future__ import annotations

import importlib
import pkgutil


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="make, fetch, inspect datasets (synth, probe, download, stats, check)",
        description="Make, fetch and inspect photo-sharing dialogue datasets.",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(commands)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

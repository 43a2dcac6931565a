"""Errors that reach the user as a message, not a traceback.

Raise ``UserError`` (or a subclass) for anything the user can fix: a bad flag, a config key
that does not exist, a missing file, a corrupt dataset in ``--strict`` mode. The message says
what was wrong and what to do. The CLI prints it and exits with ``exit_code``.
"""

from __future__ import annotations

import importlib


class UserError(Exception):
    """A problem with the user's input; printed as ``error: <message>``, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """A recipe or ``key=value`` override that does not fit the configuration schema."""


class DataError(UserError):
    """A dataset file or record that cannot be used (in ``--strict`` mode, or when nothing is usable)."""

    exit_code = 3


class RunStopped(UserError):
    """A run that stopped on purpose (e.g. too many NaN/Inf steps in a row); its last checkpoint
    is intact and ``--resume`` continues it. Exit code 4, apart from bad input (2) and bugs (1)."""

    exit_code = 4


class MissingDependencyError(UserError):
    """An optional dependency is not installed; the message carries the pip command."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise a message with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'photodialog[{extra}]' (in a clone of the repository: "
            f"pip install -e '.[{extra}]')"
        ) from exc

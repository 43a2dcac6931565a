"""The `photodialog` command: one subcommand per module of this package.

Every module in ``photodialog.cli`` other than this one and ``common`` (shared helpers, not a
command) defines ``register(subparsers)``, which adds its subcommand and sets ``func`` on the parser; ``func(args)`` returns an exit
code. Command modules import heavy libraries inside ``func`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import pkgutil
import sys

from photodialog import __version__
from photodialog.errors import UserError

EXIT_CODES_HELP = """exit codes:
  0  success
  1  an unexpected internal error (a bug: please report the traceback)
  2  bad usage, configuration or input (the message says what to fix)
  3  unusable data (a corrupt dataset in --strict mode, or nothing usable left)
  4  a training run stopped on purpose (too many NaN/Inf steps in a row); its last checkpoint is kept
  130 interrupted (Ctrl-C); long jobs keep their last checkpoint and can --resume"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photodialog",
        description="Photo-sharing multimodal dialogue: an LLM that sees photos and draws its own, trained end to end.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"photodialog {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    package = importlib.import_module("photodialog.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in {"main", "common"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"photodialog.cli.{info.name}")
        module.register(subparsers)
    return parser


class _Stderr:
    """A stream that writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _to_stderr(handler: logging.Handler) -> None:
    stream = getattr(handler, "stream", None)
    if isinstance(handler, logging.StreamHandler) and stream is not None and stream in (sys.stdout, sys.__stdout__):
        handler.setStream(_Stderr())


class _StderrLogger(logging.getLoggerClass()):
    """A logger whose handlers never write to stdout: a log handler a library adds on stdout
    (DeepSpeed's, at import) writes to stderr instead."""

    def addHandler(self, handler: logging.Handler) -> None:  # noqa: N802 - logging's name
        _to_stderr(handler)
        super().addHandler(handler)


def send_library_logs_to_stderr() -> None:
    """Keep stdout for what a command prints (``--json`` output must parse): every log handler,
    of loggers made before and after this call, writes to stderr. DeepSpeed, for one, logs its
    "Setting accelerator to CPU" warning through a stdout handler it adds when imported."""
    if not issubclass(logging.getLoggerClass(), _StderrLogger):
        logging.setLoggerClass(_StderrLogger)
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            _to_stderr(handler)


def main(argv: list[str] | None = None) -> int:
    send_library_logs_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # Any write (a log line, a result file) can meet a full disk; checkpoints say more themselves.
        print(f"error: no space left on the device ({err.filename or 'while writing'}); free some space and run again "
              "(a training run: with --resume, from its last checkpoint)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

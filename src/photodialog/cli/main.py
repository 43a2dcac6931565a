"""The `photodialog` command: the command tree, and the one command a call names.

``COMMANDS`` (and ``DATA_COMMANDS`` under ``data``) list every command with its line of
``photodialog --help``. Its code is the module ``photodialog.cli.<name>`` (``cli.data.<name>``),
imported only when the command is chosen: its ``register(subparsers, summary)`` adds its parser
and sets ``func``, and ``func(args)`` returns an exit code. So ``photodialog --help`` imports no
command (nor torch), and a command module imports what it uses at its top, like every other module.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from photodialog import __version__
from photodialog.errors import UserError

EXIT_CODES_HELP = """exit codes:
  0  success
  1  an unexpected internal error (a bug: please report the traceback)
  2  bad usage, configuration or input (the message says what to fix)
  3  unusable data (a corrupt dataset in --strict mode, or nothing usable left)
  4  a training run stopped on purpose (too many NaN/Inf steps in a row); its last checkpoint is kept
  130 interrupted (Ctrl-C); long jobs keep their last checkpoint and can --resume"""

COMMANDS = {
    "assets": "rebuild the pretrained parts photodialog ships (VAE, generator, LLM)",
    "bench": "performance benchmarks (bridge, training step, chat turn, start-up, memory, tiny generator), JSON out",
    "chat": "chat with a trained model in the terminal: it sees your photos and shares its own",
    "data": "make, fetch, inspect datasets (synth, probe, download, stats, check)",
    "demo": "the main job: fine-tune every arm over seeds -> eval -> report, one primary endpoint",
    "eval": "Table 2 metrics of a checkpoint on a split (JSON + Markdown); `eval compare` for several",
    "export": "write a checkpoint as a self-contained folder with a model card (optionally push it to the Hub)",
    "inspect": "look inside one training step (gradient flow)",
    "serve": "a web chat page: photo upload, the model's photos inline, replies streamed",
    "train": "train a model (end-to-end, or a pipeline part) from a YAML recipe; or a baseline of Table 2",
}
DATA_COMMANDS = {
    "check": "list bad records and unreadable photos of a dataset (exit 3 if any)",
    "download": "fetch PhotoChat or DialogCC: dialogue files, photos, redraw dead photos",
    "probe": "train the photo probe of a synthetic world (scores generated photos)",
    "stats": "count a dataset per split (Table 1: dialogues, utterances, photos)",
    "synth": "write the synthetic photo-sharing world (the embedded default dataset)",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: every command listed, only the one ``argv`` names built (its module
    imported). ``argv=None``: every command built, for tools that walk the whole tree (tests)."""
    parser = argparse.ArgumentParser(
        prog="photodialog",
        description="Photo-sharing multimodal dialogue: an LLM that sees photos and draws its own, trained end to end.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"photodialog {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    words = None if argv is None else [word for word in argv if not word.startswith("-")]
    for name, summary in COMMANDS.items():
        if words is not None and words[:1] != [name]:
            subparsers.add_parser(name, help=summary)
        elif name == "data":
            _add_data(subparsers, summary, None if words is None else words[1:2])
        else:
            importlib.import_module(f"photodialog.cli.{name}").register(subparsers, summary)
    _know_their_parsers(subparsers)
    return parser


def _know_their_parsers(subparsers) -> None:
    """Each (sub)command's parser as ``args.command_parser``, the deepest chosen one winning."""
    for sub in subparsers.choices.values():
        sub.set_defaults(command_parser=sub)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _know_their_parsers(action)


def _add_data(subparsers, summary: str, chosen: list[str] | None) -> None:
    """``photodialog data``: a group of commands, each built only when ``chosen`` names it (None: all)."""
    parser = subparsers.add_parser("data", help=summary, description="Make, fetch and inspect photo-sharing dialogue datasets.")
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    for name, line in DATA_COMMANDS.items():
        if chosen is None or chosen == [name]:
            importlib.import_module(f"photodialog.cli.data.{name}").register(commands, line)
        else:
            commands.add_parser(name, help=line)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


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
    # read by the Hugging Face stack when it is imported, that is, with the chosen command's module
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, whose usage line is the one that helps (exit 2)
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
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

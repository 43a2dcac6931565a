"""Pieces shared by the command modules (not a command itself)."""

from __future__ import annotations

import argparse
import logging
import sys

import diffusers
import transformers

from photodialog import system
from photodialog.config import SEED_MAX
from photodialog.devices import resolve_device
from photodialog.models.generation_settings import GenerationSettings, check_settings
from photodialog.output_files import empty_out_problem
from photodialog.registry import DECODINGS, SAMPLERS
from photodialog.serving.engine import ChatEngine


def quiet_libraries() -> None:
    """Keep the terminal for photodialog's own progress: silence library load bars and notices."""
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    logging.getLogger("photodialog").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def add_recipe_arguments(parser, *, required: bool = True) -> None:
    parser.add_argument("--config", required=required, metavar="CONFIG",
                        help="YAML recipe: a path (e.g. configs/tiny-e2e.yaml) or the name of a shipped recipe")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override recipe keys, dotted (model.bridge=none) or bare when unique (max_steps=30)")


# ------------------------------------------------------------ argparse value types
# Used as ``type=``: a bad value is refused by the parser, with the flag's name, before anything loads.


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = _parsed(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0."""
    value = _parsed(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (``nan`` and ``inf`` are not)."""
    value = _parsed(text, float, "a number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def int_between(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``. Every size or count a user gives
    has an upper bound, so that a typo (99999999999999) is refused at once instead of filling the
    memory or running for days; the flag's --help states the bounds."""

    def parse(text: str) -> int:
        value = _parsed(text, int, "a whole number")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}, got {text!r}")
        return value

    parse.__name__ = f"whole number from {low} to {high}"  # argparse names the type in some messages
    return parse


def float_between(low: float, high: float):
    """An argparse type: a number above ``low`` and at most ``high`` (``nan`` and ``inf`` are not)."""

    def parse(text: str) -> float:
        value = _parsed(text, float, "a number")
        if not low < value <= high:
            raise argparse.ArgumentTypeError(f"must be a number above {low:g} and at most {high:g}, got {text!r}")
        return value

    parse.__name__ = f"number above {low} and at most {high}"
    return parse


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to ``SEED_MAX`` (numpy's seeds are 32-bit)."""
    return int_between(0, SEED_MAX)(text)


def output_path(text: str) -> str:
    """An ``--out`` value: any path but an empty one (an unset shell variable would mean the current folder)."""
    problem = empty_out_problem(text)
    if problem:
        raise argparse.ArgumentTypeError("is empty (an unset variable?); give the folder or file to write")
    return text


def _parsed(text: str, convert, kind: str):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


# ------------------------------------------------------------ chat and serve: a checkpoint and its generation settings


def add_model_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="a checkpoint folder, a run folder (its best checkpoint, else its latest) or an export (photodialog export)")
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")


def _generation_flags():
    """(field of GenerationSettings, metavar or choices, type, help) of every generation flag;
    the flag is the field's name with dashes. Read by chat, serve and eval."""
    return [
        ("max_new_tokens", "N", int, "longest reply, in tokens"),
        ("decoding", DECODINGS.names, str, "how tokens are chosen"),
        ("num_beams", "N", int, "beams for --decoding beam (at least 2)"),
        ("temperature", "T", float, "for --decoding sample"),
        ("top_p", "P", float, "nucleus sampling mass for --decoding sample"),
        ("diffusion_steps", "N", int, "denoising steps per drawn photo"),
        ("guidance_scale", "G", float, "classifier-free guidance; 1 or less turns it off"),
        ("sampler", SAMPLERS.names, str, "diffusion sampling method"),
        ("seed", "N", int, "seed for sampling and drawing"),
    ]


def add_generation_arguments(parser, *, from_checkpoint: bool = False) -> None:
    """The flags of ``GenerationSettings``, one per field.

    Defaults are the evaluation protocol's (greedy, 30 tokens, 20 steps); with
    ``from_checkpoint`` (``photodialog eval``) they are None, meaning the checkpoint's ``eval``
    settings, and there is no ``--seed`` (eval takes ``--seeds``). Values are checked by
    ``check_settings``, the same check for every command.
    """
    default = GenerationSettings()
    title = ("decoding (default: the checkpoint's eval settings: greedy, 30 new tokens, 20 diffusion steps)"
             if from_checkpoint else "generation")
    group = parser.add_argument_group(title)
    for name, values, kind, text in _generation_flags():
        if from_checkpoint and name == "seed":
            continue
        shape = {"metavar": values} if isinstance(values, str) else {"choices": values}
        value = None if from_checkpoint else getattr(default, name)
        said = "" if from_checkpoint else " (default: %(default)s)"
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=value, help=text + said, **shape)
    add_renamed_flag(group, "--scheduler", "--sampler", dest="sampler", choices=SAMPLERS.names)


def generation_fields(args) -> dict:
    """The generation flags' values by ``GenerationSettings`` field (None: not given, for eval)."""
    return {name: getattr(args, name) for name, *_ in _generation_flags() if hasattr(args, name)}


class _RenamedFlag(argparse.Action):
    """An old flag name that still works: stores into the new flag's ``dest`` and says so on stderr."""

    def __init__(self, option_strings, dest, new_flag: str = "", **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is now {self.new_flag}; {option_string} still works but will be removed",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_renamed_flag(parser, old: str, new: str, *, dest: str, switch: bool = False, **kwargs) -> None:
    """Accept ``old`` as a hidden spelling of ``new`` (same ``dest``), with a warning when used.

    ``switch``: the flag takes no value and sets ``dest`` to True (as ``action="store_true"``).
    """
    if switch:
        kwargs.update(nargs=0, const=True)
    parser.add_argument(old, dest=dest, action=_RenamedFlag, new_flag=new, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)


def settings_from_args(args):
    """Checked ``GenerationSettings`` from the parsed flags."""
    return check_settings(GenerationSettings(**generation_fields(args)))


def load_engine(args):
    """The model of ``--checkpoint`` on ``--device``, behind a ``ChatEngine``.

    A missing checkpoint is worded by ``resolve_checkpoint`` (inside ``load_system``), as for
    every command that reads one.
    """
    quiet_libraries()

    return ChatEngine(system.load_system(args.checkpoint, device=resolve_device(args.device)))

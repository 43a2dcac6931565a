"""`photodialog export --checkpoint RUN --out DIR`: a trained model as one folder with a model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from photodialog.cli.common import add_renamed_flag, output_path, quiet_libraries
from photodialog.errors import UserError
from photodialog.export import export_checkpoint, push_to_hub

DESCRIPTION = """\
Write a trained checkpoint as a self-contained folder that others can load without the run
folder: the language model, perceptron and generator in their published layouts with the trained
weights in place, both tokenizers, the resolved config, and a model card (README.md: parts and
their licences, data, recipe, steps trained, eval numbers, intended use and limits, size and
load time). Load it with DialogueSystem.from_pretrained(DIR) or any command's --checkpoint DIR, or
part by part without photodialog: DIR/diffusion with diffusers' DiffusionPipeline (a latent
generator; a pixel-space one has no pipeline), DIR/llm with AutoModelForCausalLM and its chat
template, DIR/blip2 with Blip2VisionModelWithProjection. No exported file names a local path."""

EPILOG = """\
examples:
  photodialog export --checkpoint runs/tiny-e2e --out exports/tiny-e2e
  photodialog export --checkpoint runs/paper-photochat --out exports/paper --keep-adapters
  photodialog export --checkpoint runs/tiny-e2e --out exports/tiny-e2e --push-to-hub me/photodialog-tiny

  photodialog chat --checkpoint exports/tiny-e2e
  photodialog eval --checkpoint exports/tiny-e2e --split test

The model card quotes the eval results of the checkpoint found under its own or its run's eval/
folder (what `photodialog eval --checkpoint RUN` writes); --eval names others.
--push-to-hub needs a Hugging Face login (`hf auth login` or HF_TOKEN) and network access."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "export", help=summary,
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUN",
                        help="a run folder (its best checkpoint, else its latest) or a checkpoint folder")
    parser.add_argument("--out", required=True, type=output_path, metavar="DIR", help="the new folder (must not exist, or be empty)")
    parser.add_argument("--keep-adapters", action="store_true",
                        help="keep LoRA adapters apart, beside the untouched base weights (default: merge them in)")
    parser.add_argument("--no-average", action="store_true",
                        help="export the last weights, not their moving average (when the run kept one)")
    parser.add_argument("--eval", action="append", metavar="RESULT.json",
                        help="an eval result whose numbers go into the model card (repeatable; default: those found)")
    hub = parser.add_argument_group("the Hugging Face Hub")
    hub.add_argument("--push-to-hub", metavar="REPO", help="upload the folder to this model repository (OWNER/NAME)")
    hub.add_argument("--private", action="store_true", help="create the repository private")
    hub.add_argument("--token", metavar="TOKEN", help="Hub token (default: the logged-in one, or HF_TOKEN)")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help="no progress bar")
    add_renamed_flag(parser, "--quiet", "--no-progress", dest="quiet", switch=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    if args.push_to_hub is not None:
        _check_repo_id(args.push_to_hub)  # before minutes of export, not after
    evals = None
    if args.eval:
        evals = [Path(f) for f in args.eval]
        missing = [str(f) for f in evals if not f.is_file()]
        if missing:
            raise UserError(f"--eval {missing[0]} does not exist; give an eval result JSON (from photodialog eval)")
    quiet_libraries()
    result = export_checkpoint(args.checkpoint, args.out, keep_adapters=args.keep_adapters,
                               use_average=not args.no_average, eval_files=evals, progress=not args.quiet)
    for line in result.lines():
        print(line)
    if args.push_to_hub is not None:
        url = push_to_hub(result.out, args.push_to_hub, private=args.private, token=args.token)
        print(f"pushed to {url}")
    return 0


def _check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"--push-to-hub {repo_id!r} is not a Hub repository id (NAME or OWNER/NAME): {err}") from None

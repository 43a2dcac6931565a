"""`photodialog inspect gradients --config CONFIG [key=value ...] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from photodialog.cli.common import add_recipe_arguments, quiet_libraries
from photodialog.config import load_config
from photodialog.data.synth import write_world
from photodialog.training.inspect import gradient_report

EPILOG = """example:
  photodialog inspect gradients --config configs/tiny-e2e.yaml --json
  photodialog inspect gradients --config configs/tiny-e2e.yaml model.bridge=none --json

Prints the gradient norm that the image loss L_v alone puts on each part's trainable
parameters after one training step on a batch with photo-sharing responses. With the
end-to-end bridge the 'llm' entry is non-zero; with model.bridge=none it is exactly 0.
If data.path does not exist and the preset is tiny, a small temporary synthetic world is used."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser("inspect", help=summary,
                                   description="Inspect the model's training step.")
    commands = parser.add_subparsers(dest="inspect_command", metavar="WHAT")
    gradients = commands.add_parser(
        "gradients", help="per-part gradient norms of the image loss for one training step",
        description="Gradient norms that L_v alone puts on the LLM, perceptron, UNet and text encoder.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_arguments(gradients)
    gradients.add_argument("--json", action="store_true", help="print JSON only")
    gradients.set_defaults(func=run_gradients)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_gradients(args) -> int:

    config = load_config(args.config, args.overrides)
    quiet_libraries()

    with tempfile.TemporaryDirectory() as tmp:
        if config.model.preset == "tiny" and not Path(config.data.path or "").exists():
            print(f"data.path '{config.data.path}' not found: using a temporary 64-dialogue synthetic world", file=sys.stderr)
            config.data.path = str(Path(tmp) / "world")
            write_world(config.data.path, dialogues=64, seed=0, image_size=32, progress=False)
        report = gradient_report(config)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"bridge={report['bridge']}  text_loss={report['text_loss']:.4f}  image_loss={report['image_loss']:.4f}")
    for part, norm in report["image_loss_grad_norm"].items():
        note = "" if report["trainable"][part] else "  (frozen or absent)"
        print(f"  |dL_v/d{part}| = {norm:.6g}{note}")
    return 0

"""`photodialog assets rebuild vae|generator|llm`: make again the pretrained parts photodialog ships."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from photodialog.cli.common import quiet_libraries
from photodialog.errors import UserError
from photodialog.models.tiny_vae import rebuild_bundled as rebuild_vae
from photodialog.training.bundled import rebuild_generator, rebuild_llm

EPILOG = """what each one makes, on one CPU thread, from the demo's world (made in OUT.world unless --world):
  vae        assets/tiny-sd/vae: the tiny VAE on the world's photos (about 11 minutes)
  generator  assets/tiny-sd: configs/tiny-pretrain-generator.yaml, 8,000 steps (about 35 minutes)
  llm        assets/tiny-llm: configs/tiny-pretrain-text.yaml, the tiny LLM + image perceptron, then its
             competence on the test split (own caption names the photo, share F1, sees the photo)

On the same CPU kind and torch version the weights are the same bytes as the shipped ones (their
training.json holds the SHA-256 and the CPU kind they were made on). An interrupted rebuild resumes:
run the same command again."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser("assets", help=summary,
                                   description="Rebuild the pretrained tiny parts that ship in photodialog/assets.")
    commands = parser.add_subparsers(dest="assets_command", metavar="ACTION")
    rebuild = commands.add_parser("rebuild", help="train a shipped part again from scratch, bit for bit on its CPU kind",
                                  description="Train one of the shipped pretrained parts again from scratch and write it to --out.",
                                  epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rebuild.add_argument("part", choices=("vae", "generator", "llm"), help="which part")
    rebuild.add_argument("--out", required=True, type=Path, help="folder to write it to (must not exist)")
    rebuild.add_argument("--world", type=Path, help="the default synthetic world, if already made (default: made in OUT.world)")
    rebuild.add_argument("--steps", type=int, default=0, metavar="N",
                         help="optimizer steps, for a short smoke rebuild (default: the shipped part's; for llm it also caps the "
                              "perceptron's pretraining at N steps on 64 x N photos)")
    rebuild.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    rebuild.set_defaults(func=run_rebuild)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_rebuild(args) -> int:
    if args.out.exists():
        raise UserError(f"--out {args.out} exists; give a new folder (the shipped ones are in photodialog/assets)")
    if args.steps < 0:
        raise UserError(f"--steps must be at least 1 (got {args.steps}); leave it out for the shipped part's")
    quiet_libraries()
    steps = {"steps": args.steps} if args.steps else {}
    if args.part == "vae":
        record = rebuild_vae(args.out, args.world, progress=args.progress, **steps)
    elif args.part == "generator":
        record = rebuild_generator(args.out, args.world, progress=args.progress, **steps)
    else:
        record = rebuild_llm(args.out, args.world, progress=args.progress, **steps)
    print(json.dumps(record, indent=1))
    return 0

"""`photodialog train --config CONFIG.yaml [key=value ...] [--out DIR] [--resume]`, or a baseline of
Table 2 (`--baseline NAME [--scale SCALE]`: its two parts, joined by caption text)."""

from __future__ import annotations

import argparse
from pathlib import Path

from photodialog.cli.common import add_recipe_arguments, add_renamed_flag, output_path, quiet_libraries
from photodialog.config import load_config
from photodialog.errors import UserError
from photodialog.registry import BASELINE_SCALES, BASELINES
from photodialog.training.baselines import baseline_recipes, train_baseline
from photodialog.training.trainer import Trainer

EPILOG = """examples:
  photodialog train --config configs/tiny-e2e.yaml
  photodialog train --config configs/tiny-e2e.yaml max_steps=30 --out runs/try
  photodialog train --config configs/tiny-e2e.yaml --out runs/try --resume
  accelerate launch --num_processes 2 -m photodialog train --config configs/paper-photochat.yaml
  photodialog train --baseline pipeline --out runs/pipeline      (then: photodialog eval --checkpoint runs/pipeline/image)

The run folder holds config.yaml, environment.json, train.log, metrics.jsonl, tensorboard/ and
checkpoints/ (the last train.keep_last and the best). --out is a new or empty folder or a run
folder of train (a folder of other files, or a checkpoint folder, is refused); it is locked while
the run writes it, and a second trainer on it is refused, naming the first (pid, host). Ctrl-C
or a kill loses at most the steps since the last checkpoint: run the same command with --resume.
A broken checkpoint (files that do not match its manifest.json) is skipped with a warning and
the one before it is used.

exit codes: 0 done; 2 bad configuration or input (also a full disk); 3 unusable data (e.g. no
readable photo for the image side); 4 stopped on purpose (train.max_bad_steps_in_row NaN/Inf steps
in a row; --resume continues from the last checkpoint); 130 interrupted; 1 a bug."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "train", help=summary,
        description="Train any photodialog model on any dataset, on one process or many (accelerate launch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_arguments(parser, required=False)
    parser.add_argument("--baseline", choices=BASELINES.names, metavar="NAME",
                        help=f"train a baseline of Table 2 instead of --config ({', '.join(BASELINES.names)}): the text part into "
                             "OUT/text, then the image part joined to it into OUT/image (evaluate OUT/image)")
    parser.add_argument("--scale", choices=BASELINE_SCALES, default="tiny",
                        help="the baseline's recipes: tiny (default, the synthetic world) or the paper's for photochat / dialogcc")
    parser.add_argument("--out", dest="output_dir", type=output_path, metavar="DIR", help="run folder (default: runs/<recipe name>)")
    add_renamed_flag(parser, "--output-dir", "--out", dest="output_dir", type=output_path, metavar="DIR")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to train.log)")
    parser.set_defaults(func=run)


def run(args) -> int:

    if (args.config is None) == (args.baseline is None):
        raise UserError("give a recipe (--config CONFIG) or a baseline (--baseline NAME), one of the two")
    if args.baseline:
        return run_baseline(args)
    config = load_config(args.config, args.overrides)  # config errors stop here, before any work
    quiet_libraries()

    output = Path(args.output_dir or Path("runs") / Path(args.config).stem)
    result = Trainer(config, output, resume=args.resume, progress=not args.no_progress).run()
    loss = f", last loss {result.last_loss:.4f}" if result.last_loss is not None else ""
    print(f"trained {result.step} steps ({result.stop_reason}){loss}; run folder: {result.run_dir}")
    if result.best_checkpoint:
        print(f"best checkpoint: {result.best_checkpoint}")
    return 0


def run_baseline(args) -> int:

    recipes = baseline_recipes(args.baseline, args.scale)
    quiet_libraries()
    output = Path(args.output_dir or Path("runs") / f"{args.baseline}-{args.scale}")
    run = train_baseline(recipes, output, args.overrides, resume=args.resume, progress=not args.no_progress)
    print(f"trained {recipes.name}: text part {run.text_dir}, image part {run.image_dir}")
    print(f"evaluate it with: photodialog eval --checkpoint {run.image_dir}")
    return 0

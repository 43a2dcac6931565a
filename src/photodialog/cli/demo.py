"""`photodialog demo [--out DIR] [--seeds N] [--arms A,B] [--quick]`."""

from __future__ import annotations

import argparse

from photodialog.cli.common import int_between, output_path, quiet_libraries
from photodialog.demo.arms import ARMS, DEFAULT_ARMS, parse_arms
from photodialog.demo.plan import DEFAULT_SEEDS, make_plan
from photodialog.demo.run import run_demo
from photodialog.errors import UserError

EPILOG = """The main job on the embedded default dataset, on a CPU with no internet: does training the LLM
through the image generator's loss (L_v, through STGS and the vocabulary bridge) make the bot share
the right photo? A controlled experiment with one pre-registered primary endpoint:
  1. synthesise a photo-sharing world whose gold captions leave the colour out half the time
     (the dialogue states it, the photo shows it) and train its probe;
  2. fine-tune every arm from the pretrained start photodialog ships (the tiny LLM + perceptron
     of assets/tiny-llm, the tiny Stable Diffusion of assets/tiny-sd), once per training seed,
     same data order, same steps, gradients clipped per part:
       no-bridge     the reference: no L_v gradient on the LLM
       paper         Gumbel noise, tau annealed, sentence bridge with mean pooling, sampled caption
       authors-code  plain straight-through, all-pairs bridge summed, argmax caption
       aligned       authors-code with a word-level bridge (beyond the paper)
  3. evaluate every model on the test split (Table 2, share moment, probe scores);
  4. write DIR/report.md and report.html: the primary endpoint (the shared photo shows the gold
     photo's colour, over every gold photo turn) with Holm-corrected verdicts per arm vs
     no-bridge and the run's power; every other metric as an exploratory difference with its
     95% interval; learning checks, loss curves, examples, time, machine, commands.
DIR/plan.json holds the primary endpoint before anything trains; DIR/summary.json its verdicts.
Budgets are optimizer steps, so the same command gives the same numbers on any machine with the
same CPU kind and torch version (float sums differ between CPU kinds); two 1-thread processes run
side by side. --out is a new or empty folder or an earlier demo's (a folder of other files is
refused). Run it again with the same --out to resume, after any interruption; Ctrl-C or SIGTERM
also stops the demo's running train and eval jobs.

examples:
  photodialog demo                            # at most 20 minutes on an idle 2-core machine
  photodialog demo --seeds 6 --arms pipeline  # more seeds, and the pipeline baseline as a 5th arm
  photodialog demo --quick --out /tmp/q       # about a minute: every stage, too small to show anything"""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""

    parser = subparsers.add_parser("demo", help=summary,
                                   description="The paper's claim as a controlled experiment, at laptop scale.",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-out", type=output_path, metavar="DIR", help="output folder: new, empty or an earlier demo's (default: demo-out)")
    parser.add_argument("--seeds", type=int_between(1, 100), default=None, metavar="N",
                        help="training seeds per arm, 1 to 100 (default: 4, or 1 with --quick; 2 or more give intervals)")
    extra = [name for name in ARMS if name not in DEFAULT_ARMS]
    parser.add_argument("--arms", default="", metavar="A,B",
                        help=f"arms to add to {', '.join(DEFAULT_ARMS)}: {', '.join(extra)}")
    parser.add_argument("--quick", action="store_true", help="the one-minute smoke version (small world, a few steps per stage)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--budget-minutes", type=float, default=None, help=argparse.SUPPRESS)  # removed: budgets are steps
    parser.set_defaults(func=run)


def run(args) -> int:

    if args.budget_minutes is not None:
        raise UserError("--budget-minutes was removed: the demo's budgets are optimizer steps, so that its numbers are the "
                        "same on every machine; run `photodialog demo` (at most 20 minutes on 2 idle cores) or `--quick`")

    seeds = args.seeds if args.seeds is not None else (1 if args.quick else DEFAULT_SEEDS)
    if seeds <= 0:
        raise UserError(f"--seeds must be a positive number of training seeds, got {seeds}")

    try:
        arms = parse_arms([a.strip() for a in args.arms.split(",") if a.strip()])
    except ValueError as err:
        raise UserError(f"--arms: {err}") from None

    quiet_libraries()

    run_demo(args.out, make_plan(seeds, arms, args.quick), progress=not args.no_progress)
    return 0

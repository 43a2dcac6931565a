"""`photodialog demo [--out DIR] [--seeds N] [--arms A,B] [--quick]`."""

from __future__ import annotations

import argparse

from photodialog.cli.common import int_between, output_path

EPILOG = """The main job on the embedded default dataset, on a CPU with no internet: does the paper's
end-to-end training beat training the parts apart? A controlled experiment:
  1. synthesise a photo-sharing world (PhotoChat format, rendered photos) and train its probe;
  2. pretrain once, shared by every arm: the tiny LLM with the perceptron on the world's
     dialogues; the image generator is the pretrained tiny Stable Diffusion photodialog ships
     (8,000 steps on the default world's (caption, photo) pairs; model.tiny.diffusion_source);
  3. fine-tune every arm from that start, once per training seed, same data order, same steps:
       end-to-end  L_v reaches the LLM through STGS + the sentence bridge (the paper)
       no-bridge   the same joint training, no L_v gradient on the LLM (the ablation)
       pipeline    text and image parts fine-tuned apart (generator on gold captions)
  4. evaluate every model on the test split (Table 2, share moment, probe scores);
  5. write DIR/report.md and report.html: mean ± std over training seeds, each difference to
     end-to-end with a 95% interval over seeds and a verdict per metric, learning checks,
     loss curves, examples of every arm, time per stage, the commands behind every number.
Budgets are optimizer steps, so the same command gives the same numbers on any machine with the
same CPU kind and torch version (float sums differ between CPU kinds); two 1-thread processes run
side by side. --out is a new or empty folder or an earlier demo's (a folder of other files is
refused). Run it again with the same --out to resume, after any interruption; Ctrl-C or SIGTERM
also stops the demo's running train and eval jobs.

examples:
  photodialog demo                        # about 15 minutes on an idle 2-core machine
  photodialog demo --seeds 5 --arms word  # more seeds, and the word-level bridge as a 4th arm
  photodialog demo --quick --out /tmp/q   # about a minute: every stage, too small to show anything"""


def register(subparsers) -> None:
    # loaded when the command runs, not for --help
    from photodialog.demo.arms import ARMS, DEFAULT_ARMS

    parser = subparsers.add_parser("demo", help="the main job: pretrain -> fine-tune every arm over seeds -> eval -> report",
                                   description="The paper's claim as a controlled experiment, at laptop scale.",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-out", type=output_path, metavar="DIR", help="output folder: new, empty or an earlier demo's (default: demo-out)")
    parser.add_argument("--seeds", type=int_between(1, 100), default=None, metavar="N",
                        help="training seeds per arm, 1 to 100 (default: 3, or 1 with --quick; 2 or more give intervals)")
    extra = [name for name in ARMS if name not in DEFAULT_ARMS]
    parser.add_argument("--arms", default="", metavar="A,B",
                        help=f"arms to add to {', '.join(DEFAULT_ARMS)}: {', '.join(extra)}")
    parser.add_argument("--quick", action="store_true", help="the one-minute smoke version (small world, a few steps per stage)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--budget-minutes", type=float, default=None, help=argparse.SUPPRESS)  # removed: budgets are steps
    parser.set_defaults(func=run)


def run(args) -> int:
    # loaded when the command runs, not for --help
    from photodialog.errors import UserError

    if args.budget_minutes is not None:
        raise UserError("--budget-minutes was removed: the demo's budgets are optimizer steps, so that its numbers are the "
                        "same on every machine; run `photodialog demo` (about 15 minutes on 2 idle cores) or `--quick`")
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if seeds <= 0:
        raise UserError(f"--seeds must be a positive number of training seeds, got {seeds}")
    # loaded when the command runs, not for --help
    from photodialog.demo.arms import parse_arms

    try:
        arms = parse_arms([a.strip() for a in args.arms.split(",") if a.strip()])
    except ValueError as err:
        raise UserError(f"--arms: {err}") from None
    # loaded when the command runs, not for --help
    from photodialog.cli.common import quiet_libraries

    quiet_libraries()
    # loaded when the command runs, not for --help
    from photodialog.demo.plan import make_plan
    from photodialog.demo.run import run_demo

    run_demo(args.out, make_plan(seeds, arms, args.quick), progress=not args.no_progress)
    return 0

"""`photodialog demo [--out DIR] [--budget-minutes M] [--seeds N] [--quick]`."""

from __future__ import annotations

import argparse

EPILOG = """The main job on the embedded default dataset, on a CPU with no internet:
  1. synthesise a photo-sharing world (PhotoChat format, rendered photos) and train its probe;
  2. train the tiny end-to-end model and the tiny pipeline baseline (same components, same
     budget; two lanes side by side, one CPU thread each);
  3. evaluate both on the test split (Table 2, share moment, probe scores) over seeds;
  4. write DIR/report.md and DIR/report.html (tables, loss curves, example dialogues with
     the gold photo and each model's photo side by side).
Run it again with the same --out to resume after an interruption; finished stages are kept.

examples:
  photodialog demo                      # about 20 minutes on 2 cores
  photodialog demo --quick --out /tmp/q # about 2 minutes: a smoke test of the whole path"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="the main job: world -> train end-to-end and pipeline -> eval -> report",
                                   description="The paper's comparison, end to end, at laptop scale.",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-out", metavar="DIR", help="output folder (default: demo-out)")
    parser.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                        help="total time to aim for (default: 20, or 2 with --quick)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N", help="evaluation seeds (default: 3, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="the 2-minute smoke version (small world, short training)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    # loaded when the command runs, not for --help
    from photodialog.errors import UserError

    budget = args.budget_minutes if args.budget_minutes is not None else (2.0 if args.quick else 20.0)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if budget <= 0 or seeds <= 0:
        raise UserError("--budget-minutes and --seeds must be positive")
    # loaded when the command runs, not for --help
    from photodialog.cli.common import quiet_libraries

    quiet_libraries()
    # loaded when the command runs, not for --help
    from photodialog.demo.plan import make_plan
    from photodialog.demo.run import run_demo

    run_demo(args.out, make_plan(budget, seeds, args.quick), progress=not args.no_progress)
    return 0

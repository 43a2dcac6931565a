"""`photodialog eval`: Table 2 metrics for a checkpoint on a split; `photodialog eval compare`: results side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from photodialog.cli.common import (
    add_generation_arguments,
    generation_fields,
    non_negative_int,
    output_path,
    positive_int,
    quiet_libraries,
)
from photodialog.config import SEED_MAX
from photodialog.errors import UserError
from photodialog.evaluation.eval_files import EvalRequest
from photodialog.evaluation.evaluate import evaluate, summary_tables
from photodialog.evaluation.metrics import load_result
from photodialog.evaluation.tables import compare_results, model_names
from photodialog.files import write_text
from photodialog.output_files import reason, writable_file

EPILOG = """examples:
  photodialog eval --checkpoint runs/tiny-e2e --data worlds/default --split test
  photodialog eval --checkpoint runs/tiny-pipeline-image --seeds 0,1,2 --max-samples 200
  photodialog eval --checkpoint runs/paper-photochat --inception-weights weights-inception-2015-12-05-6726825d.pth
  photodialog eval compare runs/tiny-e2e/eval/test.json runs/tiny-pipeline-image/eval/test.json

Protocol (docs/architecture.md, "Evaluation protocol"): every turn i >= 1 of every dialogue of the split is a target; greedy
or 2-beam decoding, at most 30 new tokens (the checkpoint's eval settings unless overridden).
With greedy or beam decoding the text is generated once and the seeds change only the
diffusion noise. IS/FID: one photo per predicted turn with a caption against the gold photo of
every gold turn that has one. Without --inception-weights (photodialog never downloads them)
IS and FID are reported unavailable with the reason, and the command still succeeds.

Writes FILE (default <checkpoint>/eval/<split>.json), FILE's .md twin (Table 2, share moment,
probe scores, per-seed tables), <name>-predictions.jsonl and <name>-photos/seed-N/ next to it,
FILE last: killed at any moment, the earlier result stays whole with its photos (or there is
none). Such files next to FILE that no eval of FILE wrote are refused, never replaced.
On a synthetic world (world.json) the world's probe scores the generated photos too."""

COMPARE_EPILOG = """example:
  photodialog eval compare runs/tiny-e2e/eval/test.json runs/tiny-pipeline-image/eval/test.json --names e2e,pipeline

Differences are to the first result (means over seeds), with the better direction of each metric."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "eval", help=summary,
        description="Evaluate a checkpoint (end-to-end or pipeline) on a dataset split over seeds: BLEU-1/2, "
                    "ROUGE-L, IS, FID, share-moment P/R/F1 and, on the synthetic world, probe scores.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_eval_arguments(parser)
    parser.set_defaults(func=run)
    commands = parser.add_subparsers(dest="eval_command", metavar="{compare}")
    compare = commands.add_parser(
        "compare", help="several eval results side by side, with differences to the first",
        description="Print eval result JSONs side by side with each one's difference to the first.",
        epilog=COMPARE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("results", nargs="+", metavar="RESULT.json", help="eval result files (from photodialog eval)")
    compare.add_argument("--names", metavar="A,B,...", help="column names, one per result (default: each result's model name)")
    compare.add_argument("--format", choices=("markdown", "text"), default="markdown", help="table format (default: markdown)")
    compare.add_argument("--out", type=output_path, metavar="FILE", help="also write the table to FILE")
    compare.set_defaults(func=run_compare)


def add_eval_arguments(parser) -> None:
    """The flags of `photodialog eval`: what to evaluate, where to write, and the generation flags."""
    parser.add_argument("--checkpoint", metavar="DIR", help="a run folder (its best checkpoint), a checkpoint folder or an export; "
                        "for the pipeline, the image part's run (its model.text_from joins the text part)")
    parser.add_argument("--data", metavar="DIR", help="dataset folder (default: the checkpoint's data.path)")
    parser.add_argument("--split", default="test", help="split to evaluate: train, dev or test (default: test)")
    parser.add_argument("--seeds", default="0,1,2", type=seed_list, metavar="S,S,...",
                        help="comma-separated seeds; metrics are averaged over them (default: 0,1,2, as the paper)")
    parser.add_argument("--out", type=output_path, metavar="FILE", help="result JSON (default: <checkpoint>/eval/<split>.json)")
    parser.add_argument("--max-samples", type=non_negative_int, default=0, metavar="N",
                        help="only the first N target turns, for a quick look (default: 0 = all, the protocol)")
    parser.add_argument("--inception-weights", metavar="PATH",
                        help="torch-fidelity's Inception weights file (weights-inception-2015-12-05-6726825d.pth) "
                             "for IS/FID; without it they are reported unavailable")
    parser.add_argument("--device", metavar="DEVICE", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--name", metavar="NAME", help="model name in tables (default: end-to-end, pipeline or Divter)")
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="replies and photos per batch (default: eval.batch_size)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the result JSON (what --out holds) instead of the tables")
    add_generation_arguments(parser, from_checkpoint=True)


def seed_list(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. 0,1,2")
    seeds = [non_negative_int(part) for part in parts]

    too_big = [seed for seed in seeds if seed > SEED_MAX]
    if too_big:  # numpy's generators take 32-bit seeds: checked before any reply is generated
        raise argparse.ArgumentTypeError(f"seeds must be at most {SEED_MAX}, got {too_big[0]}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"each seed once, got {text!r}")
    return seeds


def generation_overrides(args) -> dict:
    """The generation flags given (None: the checkpoint's eval setting)."""
    return generation_fields(args)


def run(args) -> int:

    if not args.checkpoint:
        raise UserError("eval needs --checkpoint DIR (or `photodialog eval compare RESULT.json ...`)")
    quiet_libraries()

    request = EvalRequest(
        checkpoint=args.checkpoint, data=args.data, split=args.split, seeds=args.seeds, out=args.out,
        max_samples=args.max_samples, inception_weights=args.inception_weights, device=args.device,
        generation=generation_overrides(args), batch_size=args.batch_size, name=args.name,
        progress=not args.no_progress,
    )
    outputs = evaluate(request)
    if args.json:
        print(Path(outputs.paths.json).read_text(encoding="utf-8").rstrip("\n"))
        return 0
    print("\n".join(table.to_text() for table in summary_tables(outputs.result)))
    print(f"result: {outputs.paths.json}\nreport: {outputs.paths.markdown}\nphotos: {outputs.paths.photos}")
    return 0


def run_compare(args) -> int:

    if args.out:
        writable_file(Path(args.out), "--out")  # before the work, as every command that writes
    results = [load_result(path) for path in args.results]  # a missing or unreadable file is a UserError
    table = compare_results(results, column_names(args.names, results), fmt=args.format)
    print(table, end="")
    if args.out:
        try:
            write_text(Path(args.out), table)
        except OSError as err:  # the table is printed above: say only what was not written
            raise UserError(f"could not write the table to {args.out}: {reason(err)}") from None
    return 0


def column_names(names: str | None, results: list) -> list[str] | None:
    """``--names`` as a list, checked against the results by the tables' own rule (one name per result)."""

    if not names:
        return None
    try:
        return model_names(results, [name.strip() for name in names.split(",")])
    except ValueError as err:  # a usage error here: say which flag, without a traceback
        raise UserError(f"--names gives {err}") from None

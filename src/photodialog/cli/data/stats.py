"""`photodialog data stats DIR [--json] [--strict]`: Table 1 of the paper for a dataset folder."""

from __future__ import annotations

import argparse
import json
import sys

from photodialog.data.load_report import LoadReport
from photodialog.data.stats import dataset_stats

DESCRIPTION = """\
Count a dataset the way Table 1 of the paper does, per split and in total:

  # Dial    dialogues
  # Utter   messages, excluding those in which photos are shared
  # CUtter  the same, counting a run of consecutive messages of one speaker once
  U/D       # CUtter / # Dial
  # Img     photos shared        # DImg  distinct photos (by photo_id, else URL)
  I/D       # Img / # Dial       # Local photos with a file under DIR/photos/

DIR is a PhotoChat or DialogCC folder (DIR/{train,dev,test}/*.json|*.jsonl, or
DIR/{train,valid,test}.json|.jsonl; Parquet too, and the Hub's layouts: DIR/data/SPLIT-*.parquet,
a converted-Parquet download DIR/CONFIG/SPLIT/*.parquet, a save_to_disk folder), or one file. Bad records (malformed JSON, missing keys,
wrong types, empty dialogues, photos without a caption, text that is not UTF-8) are skipped,
counted and reported on stderr; --strict stops at the first one instead."""

EPILOG = """\
examples:
  photodialog data stats data/photochat
  photodialog data stats data/dialogcc --json > dialogcc-stats.json
  photodialog data stats data/world --split test --check-photos

exit codes:
  0  counted (records with problems, if any, were skipped and reported on stderr)
  2  bad usage, or DIR does not exist
  3  --strict and a record has a problem, or nothing usable is left"""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "stats",
        help=summary,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="DIR", help="dataset folder (or a single dataset file)")
    parser.add_argument("--split", help="count only this split (train, dev or test; 'valid' means dev)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.add_argument("--strict", action="store_true", help="stop with exit code 3 at the first bad record")
    parser.add_argument(
        "--check-photos",
        action="store_true",
        help="decode every local photo; a corrupt file is reported and not counted in '# Local' (slow)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    report = LoadReport()
    stats = dataset_stats(args.path, args.split, strict=args.strict, report=report, check_photos=args.check_photos)
    if not report.ok:
        print(report.summary(), file=sys.stderr)
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
    else:
        print(stats.table())
    return 0

"""`photodialog data check DIR`: find every bad record and unreadable photo before training."""

from __future__ import annotations

import argparse
import json

from photodialog.cli.common import int_between
from photodialog.data.load_report import LoadReport
from photodialog.data.stats import dataset_stats

DESCRIPTION = """\
Read a whole dataset folder as training would, decode every local photo, and list what is
wrong: malformed JSON, missing keys, wrong types, empty dialogues, photos without a caption,
text that is not UTF-8, truncated or corrupt photo files. Also says how many shared photos
have no local file yet (dead URLs or not fetched: see `photodialog data download`).

Loading for training skips the same bad records; this command lets you see them all first."""

EPILOG = """\
examples:
  photodialog data check data/photochat
  photodialog data check data/dialogcc --no-photos --max-messages 50

exit codes:
  0  no problems
  2  bad usage, or DIR does not exist
  3  problems found (listed), or nothing usable at all"""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "check",
        help=summary,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="DIR", help="dataset folder (or a single dataset file)")
    parser.add_argument("--split", help="check only this split (train, dev or test; 'valid' means dev)")
    parser.add_argument("--no-photos", action="store_true", help="do not decode photo files (faster)")
    parser.add_argument("--max-messages", type=int_between(0, 100_000), default=20, metavar="N",
                        help="problems to list in full, 0 to 100,000 (default 20)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    report = LoadReport(max_messages=max(args.max_messages, 0))
    stats = dataset_stats(args.path, args.split, report=report, check_photos=not args.no_photos)
    total = stats.total
    if args.json:
        print(json.dumps({**report.as_dict(), "photos": total.photos, "local_photos": total.local_photos}, indent=2))
    else:
        print(report.summary())
        missing = total.photos - total.local_photos
        checked = "" if args.no_photos else " (each decoded)"
        print(f"photos: {total.photos:,} shared, {total.local_photos:,} with a local file{checked}, {missing:,} without")
    return 0 if report.ok else 3

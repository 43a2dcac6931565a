"""`photodialog data download photochat|dialogcc --out DIR`: fetch a published dataset."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from photodialog.cli.common import add_renamed_flag, float_between, int_between, output_path, positive_int, seed
from photodialog.data.download import DownloadOptions, HttpLimits, download_dataset
from photodialog.data.download.fallback import FallbackOptions
from photodialog.data.download.sources import parse_splits
from photodialog.registry import DATASET_SOURCES

DESCRIPTION = """\
Fetch a published photo-sharing dialogue dataset into a dataset folder: its dialogue files,
then every photo its dialogues share, then (optionally) redraw the photos whose URLs are dead.

  photochat  PhotoChat (Zang et al., ACL 2021), licence CC BY 4.0. 25 JSON files from the
             google-research repository (multimodalchat/photochat/{train,dev,test}/*.json),
             12,286 dialogues, one Flickr photo each.
  dialogcc   DialogCC (Lee et al., NAACL 2024), licence CC BY-NC-SA 4.0 (non-commercial,
             share alike). train.json, valid.json, test.json of the Hugging Face dataset
             passing2961/dialogcc (about 356 MB), 83,370 dialogues, CC3M photos.

The licences bind what you do with the data; read them before you publish anything trained on it.

What goes where (the layout every photodialog loader reads):
  DIR/train/ DIR/dev/ DIR/test/      PhotoChat files, names and format as published
  DIR/train.json valid.json test.json DialogCC files as published ("valid" is read as dev)
  DIR/photos/<photo stem>.<ext>      one file per photo, fully decoded before it is kept
  DIR/photos/manifest.jsonl          one line per photo: url, stem, path, status
                                     (ok | failed | generated), reason, bytes, attempts,
                                     source (which source served it), tried (why each
                                     earlier source failed)
  DIR/photos/dialogue_files.json     which dialogue files were fetched, from where

Run the same command again to resume: photos already present and whole are skipped, photos
that failed are not asked for again unless --retry-failed. Ctrl-C keeps everything fetched.
Many photo URLs of both datasets are dead. Each photo is asked of these sources in turn until
one serves it: the Open Images file named by its photo_id (PhotoChat, with --open-images), its
own URL, a mirror of the photos (--photo-source), and last the text-to-image model of
--fallback-generator, which redraws it from its caption (as the paper did with Stable
Diffusion 3 medium). The dialogue files come from elsewhere: a record's own photo URL is fetched
only over http(s), never file:// or another scheme, and its photo_id only as a plain name."""

EPILOG = """\
examples:
  photodialog data download photochat --out data/photochat --limit 20      # try it out
  photodialog data download photochat --out data/photochat                 # everything
  photodialog data download dialogcc --out data/dialogcc --workers 32
  photodialog data download photochat --out data/photochat --open-images /data/openimages \\
      --photo-source ORG/photochat-photos          # Open Images, URL, Hub mirror, in that order
  photodialog data download photochat --out data/photochat --retry-failed \\
      --fallback-generator stabilityai/stable-diffusion-3-medium-diffusers --fallback-size 512

environment:
  PHOTODIALOG_PHOTOCHAT_BASE_URL, PHOTODIALOG_DIALOGCC_BASE_URL   where the dialogue files are
  fetched from, if not --base-url (a mirror, http://..., or file:///path/to/a/copy)

exit codes:
  0  done: every photo ok, or failures recorded in the manifest (the summary says how many)
  2  bad usage (the message says what to fix)
  3  the dialogue files themselves could not be fetched or read
  130 interrupted (Ctrl-C): what was fetched is kept; run the same command again to go on"""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def byte_size(text: str) -> int:
    """``"20MB"`` -> 20000000, ``"512KiB"`` -> 524288, ``"1000"`` -> 1000."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 20MB, 512KiB, 1000000)")
    unit = (match.group(2) or "").lower().removesuffix("b")
    return int(float(match.group(1)) * _UNITS[unit])


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "download",
        help=summary,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=DATASET_SOURCES.names, help="which dataset to fetch")
    parser.add_argument(
        "--out", required=True, type=lambda text: Path(output_path(text)), metavar="DIR", help="the dataset folder (created if missing)"
    )
    _add_source_arguments(parser)
    _add_photo_arguments(parser)
    _add_photo_source_arguments(parser)
    _add_fallback_arguments(parser)
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help="no progress bars (the summary is still printed)")
    add_renamed_flag(parser, "--quiet", "--no-progress", dest="quiet", switch=True)
    parser.set_defaults(func=run)


def _add_source_arguments(parser) -> None:
    group = parser.add_argument_group("dialogue files")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="fetch the dialogue files from here instead of the published location "
        "(default: $PHOTODIALOG_<DATASET>_BASE_URL, else GitHub / Hugging Face); "
        "published file paths are appended, e.g. URL/train/train_00.json or URL/valid.json",
    )
    group.add_argument(
        "--splits", metavar="LIST", help="comma-separated splits to fetch: train,dev,test (default: all; valid = dev)"
    )
    group.add_argument(
        "--limit", type=positive_int, metavar="N", help="only the first N dialogues of each split, to try things out"
    )
    group.add_argument(
        "--refetch-dialogues", action="store_true", help="fetch the dialogue files again even if they are already there"
    )


def _add_photo_arguments(parser) -> None:
    group = parser.add_argument_group("photos")
    group.add_argument("--no-photos", action="store_true", help="fetch the dialogue files only")
    group.add_argument(
        "--workers", type=int_between(1, 256), default=16, metavar="N",
        help="photos fetched at the same time, 1 to 256 (default: 16)"
    )
    group.add_argument(
        "--timeout",
        type=float_between(0, 3600),
        default=20.0,
        metavar="SECONDS",
        help="per-request timeout for connecting and for each read, above 0 and at most 3600 (default: 20); "
        "one attempt may take at most 6 times this in all, headers included (a host that slow "
        "is not asked again)",
    )
    group.add_argument(
        "--retries",
        type=int_between(0, 20),
        default=3,
        metavar="N",
        help="further attempts after a timeout, a dropped connection, HTTP 5xx or 429, 0 to 20, "
        "with exponential backoff; other HTTP 4xx are never retried (default: 3)",
    )
    group.add_argument(
        "--backoff",
        type=float_between(0, 3600),
        default=1.0,
        metavar="SECONDS",
        help="wait before the first retry, doubled for each next one (at most 60 s); above 0 and at most 3600 (default: 1)",
    )
    group.add_argument(
        "--max-bytes",
        type=byte_size,
        default="20MB",
        metavar="SIZE",
        help="largest photo accepted, enforced while streaming (default: 20MB)",
    )
    group.add_argument(
        "--retry-failed", action="store_true", help="ask again for the photos the manifest records as failed"
    )


def _add_photo_source_arguments(parser) -> None:
    group = parser.add_argument_group(
        "other photo sources (order: --open-images, the photo's URL, --photo-source, --fallback-generator)"
    )
    group.add_argument(
        "--open-images",
        metavar="DIR|TEMPLATE",
        help="PhotoChat: fetch each photo first from the Open Images file its photo_id names: a local folder "
        "(DIR/train/ID.jpg or DIR/ID.jpg) or a URL template with {photo_id} (train/ID) or {image_id} (ID); "
        "a photo_id that is not a plain name (../, /, ?) is not used",
    )
    group.add_argument(
        "--photo-source",
        metavar="REPO|DIR",
        help="a Hugging Face Hub dataset (or a local folder) mirroring the photos, one file per photo named "
        "by its stem under photos/ (e.g. train/ID.jpg, url/HASH.jpg); asked for photos whose URL failed",
    )


def _add_fallback_arguments(parser) -> None:
    group = parser.add_argument_group("redrawing photos that could not be fetched")
    group.add_argument(
        "--fallback-generator",
        metavar="MODEL",
        help="a diffusers text-to-image pipeline (hub id or local folder), e.g. "
        "stabilityai/stable-diffusion-3-medium-diffusers (the paper's); each failed photo is "
        "generated from its caption, saved under its stem and marked 'generated'",
    )
    group.add_argument(
        "--fallback-steps", type=int_between(1, 1000), default=28, metavar="N",
        help="denoising steps, 1 to 1000 (default: 28)"
    )
    group.add_argument(
        "--fallback-seed",
        type=seed,
        default=0,
        metavar="SEED",
        help="base seed, 0 to 2^32-1; each photo adds a hash of its stem, so results do not depend on order (default: 0)",
    )
    group.add_argument(
        "--fallback-device", default="auto", metavar="DEVICE", help="cuda, mps, cpu or auto (default: auto)"
    )
    group.add_argument(
        "--fallback-size", type=int_between(16, 4096), metavar="PIXELS",
        help="square image side, 16 to 4096 (default: the model's)"
    )


def run(args: argparse.Namespace) -> int:

    options = DownloadOptions(
        dataset=args.dataset,
        out=args.out,
        splits=parse_splits(args.splits),
        base_url=args.base_url,
        limit=args.limit,
        workers=args.workers,
        limits=HttpLimits(
            timeout=args.timeout, retries=args.retries, backoff=args.backoff, max_bytes=args.max_bytes
        ),
        retry_failed=args.retry_failed,
        refetch_dialogues=args.refetch_dialogues,
        photos=not args.no_photos,
        fallback=_fallback_options(args, FallbackOptions),
        open_images=args.open_images,
        photo_source=args.photo_source,
        progress=not args.quiet,
    )
    summary = download_dataset(options)
    for line in summary.lines():
        print(line)
    if summary.interrupted:
        return 130
    if summary.failed:
        print(
            f"{summary.failed} photo(s) could not be fetched; they are recorded in "
            f"{summary.out / 'photos' / 'manifest.jsonl'} with the reason. Rerun with --retry-failed "
            f"to ask again, or --fallback-generator MODEL to redraw them from their captions.",
            file=sys.stderr,
        )
    return 0


def _fallback_options(args, options_class):
    if not args.fallback_generator:
        return None
    return options_class(
        model=args.fallback_generator,
        steps=args.fallback_steps,
        seed=args.fallback_seed,
        device=args.fallback_device,
        size=args.fallback_size,
    )

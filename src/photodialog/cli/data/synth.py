"""`photodialog data synth`: write the synthetic photo-sharing world (the embedded default dataset)."""

from __future__ import annotations

import argparse
import time

from photodialog.cli.common import add_renamed_flag, output_path
from photodialog.config import SEED_MAX
from photodialog.data.synth.writer import write_world
from photodialog.output_files import writable_folder

# data/synth/writer.py's bounds (checked there, with a message), repeated for --help, which imports no numpy;
# a test keeps them equal
MIN_DIALOGUES, MAX_DIALOGUES = 10, 200_000
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024

DESCRIPTION = """\
Write a synthetic photo-sharing world in PhotoChat's published format: DIR/{train,dev,test}/data_K.json
(JSON arrays of at most 500 dialogues), one rendered photo per dialogue under DIR/photos/<split>/,
and DIR/world.json (attributes, held-out combinations, settings).

Each photo shows one object in one colour in one scene, and its caption says so
("a red car at the beach"). The sharer talks about the photo before sharing it, and the reply
after it names what is in it. About 15 % of (object, colour, scene) combinations never appear in
train or dev; about half of the test dialogues use them. The same arguments always give
byte-identical files."""

EPILOG = """\
examples:
  photodialog data synth --out worlds/default
  photodialog data synth --out /tmp/small --dialogues 200 --image-size 32
  photodialog data synth --out worlds/colour-omitted --omit-colour 0.5
next: train the photo probe that scores generated photos with
  photodialog data probe worlds/default"""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "synth", help=summary,
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=output_path, metavar="DIR",
                        help="folder to write the world into: new, empty, or a world (also one whose writing was killed)")
    parser.add_argument("--dialogues", type=int, default=2000, metavar="N",
                        help=f"number of dialogues in all splits, split about 80/10/10; {MIN_DIALOGUES} to "
                             f"{MAX_DIALOGUES:,} (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help=f"random seed, 0 to {SEED_MAX}; the world is a function of it (default: 0)")
    parser.add_argument("--image-size", type=int, default=64, metavar="PX",
                        help=f"side of the square photos in pixels, {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (default: 64)")
    parser.add_argument("--omit-colour", type=float, default=0.0, metavar="FRACTION",
                        help="leave the colour out of this fraction of gold captions (\"a car at night\"), as "
                             "PhotoChat's object lists leave out what a photo shows; the dialogue still states it "
                             "and the photo shows it; 0 to 1 (default: 0, complete captions; the demo's world: 0.5)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty folder that is not a world; its train/, dev/, "
                             "test/, photos/, probe/ and world.json are replaced, nothing else")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help="no progress bar")
    add_renamed_flag(parser, "--quiet", "--no-progress", dest="quiet", switch=True)
    parser.set_defaults(func=run)


def run(args) -> int:

    writable_folder(args.out, "--out", create=False)  # a path that cannot be written fails now, in words
    started = time.perf_counter()
    world = write_world(args.out, dialogues=args.dialogues, seed=args.seed,
                        image_size=args.image_size, force=args.force, progress=not args.quiet,
                        omit_colour=args.omit_colour)
    counts = world.counts
    print(f"wrote a synthetic world to {world.root} in {time.perf_counter() - started:.1f} s: "
          f"{counts['train']} train / {counts['dev']} dev / {counts['test']} test dialogues "
          f"({counts['test_held_out']} test dialogues show one of the {len(world.held_out)} "
          f"held-out combinations), {world.image_size} px photos"
          + (f"; {world.omit_colour:.0%} of captions leave the colour out" if world.omit_colour else ""))
    print(f"next: photodialog data probe {world.root}")
    return 0

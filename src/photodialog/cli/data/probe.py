"""`photodialog data probe`: train the photo probe of a synthetic world and report its accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path

from photodialog.cli.common import add_renamed_flag, int_between, output_path, seed
from photodialog.data.synth.probe import PROBE_DIR, train_probe
from photodialog.output_files import writable_folder

DESCRIPTION = """\
Train the photo probe of a synthetic world: a small CNN with three heads (object, colour, scene)
that scores generated photos objectively. It trains on the train split's photos (with blur, noise
and colour-jitter augmentation, so that it also reads blurry generated photos), is tested on the
test split, and is saved to DIR/probe/ (model.safetensors + config.json with the accuracies).
Deterministic for a seed on CPU."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "probe", help=summary,
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  photodialog data synth --out worlds/default\n"
               "  photodialog data probe worlds/default",
    )
    parser.add_argument("world", metavar="DIR", help="a world written by `photodialog data synth`")
    parser.add_argument("--epochs", type=int_between(1, 1000), default=10, metavar="N",
                        help="training epochs, 1 to 1000 (default: 10)")
    parser.add_argument("--image-size", type=int_between(8, 256), default=32, metavar="PX",
                        help="photos are resized to PX x PX for the probe, 8 to 256 (default: 32, the size "
                             "the tiny diffusion model draws at)")
    parser.add_argument("--seed", type=seed, default=0, metavar="S", help="random seed, 0 to 2^32-1 (default: 0)")
    parser.add_argument("--batch-size", type=int_between(1, 4096), default=32, metavar="N",
                        help="batch size, 1 to 4096 (default: 32)")
    parser.add_argument("--threads", type=int_between(0, 1024), default=1, metavar="N",
                        help="CPU threads for training, 0 to 1024; 0 leaves torch's default (default: 1, "
                             "which keeps results identical across machines)")
    parser.add_argument("--out", type=output_path, metavar="DIR", default=None,
                        help="where to save the probe (default: WORLD/probe)")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help="no progress bar")
    add_renamed_flag(parser, "--quiet", "--no-progress", dest="quiet", switch=True)
    parser.set_defaults(func=run)


def run(args) -> int:

    # a folder that cannot be written fails now, not after the training
    writable_folder(args.out or Path(args.world) / PROBE_DIR, "--out", create=False)

    report = train_probe(args.world, out_dir=args.out, epochs=args.epochs,
                         image_size=args.image_size, seed=args.seed, batch_size=args.batch_size,
                         threads=args.threads or None, progress=not args.quiet)
    print(f"trained the probe on {report.train_photos} photos in {report.seconds:.1f} s; "
          f"saved to {report.out_dir}")
    print(f"accuracy on {report.test_photos} test photos:")
    rows = [("test", report.accuracy), ("test, held-out combinations", report.held_out_accuracy),
            ("test, blurred (sigma 1 px)", report.blurred_accuracy)]
    print(f"  {'':30s} {'object':>7s} {'colour':>7s} {'scene':>7s} {'all':>7s}")
    for name, scores in rows:
        if scores:
            cells = " ".join(f"{100 * scores[k]:6.1f}%" for k in ("object", "colour", "scene", "all"))
            print(f"  {name:30s} {cells}")
    if min(report.accuracy[k] for k in ("object", "colour", "scene")) < 0.95:
        print("note: below 95 % on some head; more --epochs or a larger world help")
    return 0

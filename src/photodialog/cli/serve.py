"""`photodialog serve --checkpoint DIR`: a web chat page where the model sees and shares photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from photodialog.cli.common import add_generation_arguments, add_model_arguments, load_engine, output_path, settings_from_args
from photodialog.errors import UserError, require
from photodialog.output_files import claim_folder
from photodialog.serving import web
from photodialog.serving.limits import InputLimits

EPILOG = """examples:
  photodialog serve --checkpoint runs/tiny-e2e
  photodialog serve --checkpoint runs/paper/checkpoints/best --host 0.0.0.0 --port 8080 --out served

Open the printed address in a browser. Each visitor (each tab) has a conversation of their own;
replies are generated one at a time by one shared model, streamed as they are written. The
page's settings (temperature, diffusion steps, guidance, seed) start at the generation flags'
values. Everything the server writes goes under --out (a new or empty folder, or one an earlier
serve made): sessions/<server>/<id>/photos/ (uploaded photos, re-encoded as PNG at most 1024
pixels wide, and the model's photos), sessions/<server>/<id>/dialogue.json (Save dialogue; photo
paths relative to it), and gradio-cache/ (the web framework's copies of uploads and served
files, kept under --max-upload-cache-mb, oldest first). A session's folder is removed when the
session ends (its tab closed for an hour, 6 hours without a message, or the server stopped);
each server removes only the folders it made, so several servers may share one --out.
The page is an API too (gradio_client): /send, /new_chat and /save (returns the saved file);
docs/serving.md has an example.
Limits: 4 photos and 60 megapixels per message, 32 photos per conversation, 120 megapixels
decoded at once over all visitors. Ctrl-C (or SIGTERM) stops it."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "serve", help=summary,
        description="Serve a web chat page for a trained checkpoint (Gradio).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 for everyone)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    parser.add_argument("--out", default="serve-output", type=output_path, metavar="DIR",
                        help="folder for every file the server writes: new, empty or an earlier serve's (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N",
                        help="requests handled at once, at most 64; replies still generate one at a time (default: %(default)s)")
    parser.add_argument("--queue-size", type=int, default=64, metavar="N",
                        help="requests that may wait, at most 10,000; more are refused with a 'queue full' message (default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=float, default=10, metavar="MB",
                        help="largest photo file accepted, at most 1024 (default: %(default)s)")
    parser.add_argument("--max-upload-cache-mb", type=float, default=512, metavar="MB",
                        help="disk the uploads and served copies may take, at most 1048576 (1 TB); the oldest go first (default: %(default)s)")
    add_generation_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:

    require("gradio", "serve", "the web chat page (photodialog serve)")  # before the model loads
    settings = settings_from_args(args)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535 (got {args.port})")
    if args.concurrency < 1 or args.queue_size < 1 or not args.max_upload_mb > 0:
        raise UserError("--concurrency and --queue-size must be at least 1, --max-upload-mb above 0")
    if args.concurrency > 64 or args.queue_size > 10_000:
        raise UserError("--concurrency may be at most 64 and --queue-size at most 10,000 "
                        f"(got {args.concurrency} and {args.queue_size})")
    if not (args.max_upload_mb <= 1024 and args.max_upload_cache_mb <= 1 << 20):
        raise UserError(f"--max-upload-mb may be at most 1024 and --max-upload-cache-mb at most 1048576 (1 TB) "
                        f"(got {args.max_upload_mb:g} and {args.max_upload_cache_mb:g})")
    if not args.max_upload_cache_mb >= args.max_upload_mb * InputLimits.max_photos_per_message:
        raise UserError(f"--max-upload-cache-mb must hold one full message: at least "
                        f"{args.max_upload_mb * InputLimits.max_photos_per_message:g} (4 x --max-upload-mb)")
    limits = InputLimits(max_photo_bytes=int(args.max_upload_mb * 2**20),
                         max_upload_cache_bytes=int(args.max_upload_cache_mb * 2**20))
    # Before the model loads; a folder of other files is refused (the janitor deletes files of its own names there).
    claim_folder(args.out, "serve", made_before=lambda folder: (folder / "gradio-cache").is_dir())
    engine = load_engine(args)

    app = web.build_app(engine, Path(args.out), settings, limits, concurrency=args.concurrency,
                    queue_size=args.queue_size, title=str(args.checkpoint))
    url = web.launch(app, args.host, args.port, limits)
    print(f"serving the chat page at {url} (files under {Path(args.out).absolute()}); Ctrl-C stops it", flush=True)
    web.serve_forever(app)
    return 0

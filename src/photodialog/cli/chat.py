"""`photodialog chat --checkpoint DIR`: chat with a trained model in the terminal, or reply once (--message)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from photodialog.cli.common import add_generation_arguments, add_model_arguments, load_engine, output_path, settings_from_args
from photodialog.errors import UserError
from photodialog.output_files import writable_file, writable_folder
from photodialog.serving.history import read_history
from photodialog.serving.limits import InputLimits, check_message, check_message_photos, check_photo_file
from photodialog.serving.session import ChatSession
from photodialog.serving.terminal import TerminalChat

EPILOG = """examples:
  photodialog chat --checkpoint runs/tiny-e2e
  photodialog chat --checkpoint runs/tiny-e2e --decoding sample --temperature 0.8 --seed 3
  photodialog chat --checkpoint runs/tiny-e2e --message "look at my new car" --photo car.jpg --json
  photodialog chat --checkpoint runs/tiny-e2e --history chat.json --message "and now?" --save chat.json

In the chat, /photo PATH attaches a photo to your next message; /reset, /save [FILE], /help and
/quit do what they say. The model's photos are saved under --out and their paths printed.
Photos get the next free number (user-001.png, user-002.png, ...): a reused --out keeps every
earlier file. /save and --save take a file (replaced) or a folder (a new dialogue.json in it);
photo paths in the saved file are relative to it. Every output place is checked before the
model loads; a write that fails later is reported, and the reply is kept and printed.

--history FILE continues a dialogue: a PhotoChat file as /save and --save write it (user_id 0 is
you, 1 the model), or JSONL turns, one per line:
  {"speaker": "user", "text": "look at this", "photos": ["cat.jpg"]}
  {"speaker": "bot", "text": "what a cute cat!"}
A history file holds at most 4 MB, 32 photos and JSON nested 64 levels deep.

--json prints {"text": ..., "captions": [...], "photos": [paths]}: the reply with its photos
inline as [IMG] caption [/IMG], the captions, and the files of the drawn photos (null for one
that could not be written; the exit code is then 2)."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "chat", help=summary,
        description="Chat with a trained checkpoint in the terminal, or get one reply with --message.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--out", type=output_path, metavar="DIR",
                        help="folder for your photos, the model's photos and saved dialogues "
                             "(default: chat-output/<timestamp>)")
    once = parser.add_argument_group("one reply, no conversation (scripts)")
    once.add_argument("--message", metavar="TEXT", help="reply once to TEXT and exit (may be empty with --photo)")
    once.add_argument("--photo", action="append", default=[], metavar="PATH",
                      help="a photo sent with --message (repeatable)")
    once.add_argument("--history", metavar="FILE",
                      help="the dialogue so far: PhotoChat JSON (as /save writes) or JSONL turns")
    once.add_argument("--json", action="store_true", help='print {"text", "captions", "photos"} as JSON')
    once.add_argument("--save", metavar="FILE", help="also write the dialogue, reply included, as PhotoChat JSON "
                                                     "(a folder: a new dialogue.json in it)")
    add_generation_arguments(parser)
    parser.set_defaults(func=run)


def default_out_dir(root: str = "chat-output") -> Path:
    """``chat-output/<timestamp>``, with a suffix when two chats start in the same second."""
    base = Path(root) / time.strftime("%Y%m%d-%H%M%S")
    path, number = base, 1
    while path.exists():
        number += 1
        path = base.with_name(f"{base.name}-{number}")
    return path


def run(args) -> int:

    settings = settings_from_args(args)  # every cheap check before the model loads
    given = {"--photo": args.photo, "--history": args.history, "--json": args.json, "--save": args.save}
    once = [flag for flag, value in given.items() if value]
    if args.message is None and once:
        raise UserError(f"add --message TEXT to use {', '.join(once)} (one reply to one message); "
                        "without them, chat is a conversation")
    if args.message is None:
        return chat_interactively(args, settings)
    return reply_once(args, settings)


def chat_interactively(args, settings) -> int:

    out = writable_folder(Path(args.out) if args.out else default_out_dir(), "--out (the chat's photos and dialogues)")
    engine = load_engine(args)
    return TerminalChat(engine, ChatSession(out), settings).run()


def reply_once(args, settings) -> int:

    # Every check before the model loads: the input, and that every output can be written.
    limits = InputLimits()
    history = read_history(args.history, limits) if args.history else []
    files = [(Path(path).expanduser(), path) for path in args.photo]
    check_message(args.message, len(files), limits)
    check_message_photos(files, limits, held=sum(1 for turn in history for photo in turn.photos if photo.path))
    images = [check_photo_file(file, limits, name=name) for file, name in files]
    text = check_message(args.message, len(images), limits)
    out = writable_folder(Path(args.out) if args.out else default_out_dir(), "--out (the chat's photos)", create=False)
    save = Path(args.save).expanduser() if args.save else None
    if save is not None and save.is_dir():
        writable_folder(save, "--save")  # the dialogue goes to a new file in it
    elif save is not None:
        writable_file(save, "--save", create=False)
    engine = load_engine(args)
    session = ChatSession(out, history)
    session.add_user_message(text, images)
    reply = engine.reply(session.history, settings)
    photos = [str(path) if path else None for path in session.add_reply(reply)]
    # The reply first: whatever cannot be written afterwards, the person has it.
    if args.json:
        print(json.dumps({"text": reply.text, "captions": reply.captions, "photos": photos}, ensure_ascii=False))
    else:
        print(reply.text or "(no reply)")
        for path, caption in zip(photos, reply.captions):
            if path:
                print(f"[photo: {caption}] saved to {path}", file=sys.stdout)
    sys.stdout.flush()
    problems = session.take_write_problems()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if save is not None:
        print(f"saved the dialogue to {session.save(save)}", file=sys.stderr)  # a failure: UserError, exit 2
    return 2 if problems else 0

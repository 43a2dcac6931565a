"""The terminal chat of ``photodialog chat``: type messages, attach photos, see replies stream in.

Lines starting with ``/`` are commands (``HELP``); anything else is a message to the model. The
loop reads with an injectable ``read_line`` (default ``input``: line editing in a terminal, and
``EOFError`` at the end of input), so tests and pipes drive it like a person would.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from photodialog.errors import UserError
from photodialog.models.generation import Reply
from photodialog.models.generation_settings import GenerationSettings
from photodialog.serving.engine import ChatEngine, DrawingStep, Finished, TextSoFar, Waiting
from photodialog.serving.limits import InputLimits, check_message, check_message_photos, check_photo_file
from photodialog.serving.session import ChatSession

log = logging.getLogger(__name__)

HELP = """commands:
  /photo PATH    attach a photo to your next message (repeat for several)
  /reset         start a new conversation
  /save [FILE]   write the conversation in PhotoChat's format (default: a new dialogue.json in {out};
                 a folder: a new file in it; a file: replaced)
  /help          this list
  /quit          leave (Ctrl-D works too)
anything else is a message; begin it with // to send a message that begins with /"""


class TerminalChat:
    """A read-reply loop over one ``ChatSession`` with one shared ``ChatEngine``."""

    def __init__(self, engine: ChatEngine, session: ChatSession, settings: GenerationSettings, *,
                 limits: InputLimits | None = None, read_line: Callable[[str], str] | None = None,
                 out: TextIO | None = None):
        self.engine, self.session, self.settings = engine, session, settings
        self.limits = limits or InputLimits()
        self.read_line = read_line or input  # looked up now, not at import, so a replaced input() is honoured
        self.out = out or sys.stdout
        self.pending: list[tuple[str, object]] = []  # (path as typed, decoded image) for the next message
        self.commands = {"/photo": self.attach, "/reset": self.reset, "/save": self.save,
                         "/help": self.help, "/quit": self.quit, "/exit": self.quit}

    def run(self) -> int:
        """Chat until ``/quit`` or end of input; returns the exit code."""
        self.say(f"chatting with the model; photos and saved dialogues go to {self.session.out_dir}. /help lists commands.")
        while True:
            try:
                line = self.read_line("you> ")
            except EOFError:
                self.say("")
                return 0
            try:
                if not self.handle(line.strip()):
                    return 0
            except UserError as err:
                self.say(f"error: {err}")

    def handle(self, line: str) -> bool:
        """Act on one line; False when the chat should end."""
        if line.startswith("/") and not line.startswith("//"):
            name, _, argument = line.partition(" ")
            command = self.commands.get(name.lower())
            if command is None:
                raise UserError(f"unknown command {name}; type /help for the list")
            return command(argument.strip()) is not False
        if line or self.pending:
            self.send(line[1:] if line.startswith("//") else line)
        return True

    # ------------------------------------------------------------ commands

    def attach(self, argument: str) -> None:
        path = argument.strip().strip("'\"")
        if not path:
            raise UserError("/photo needs a path, e.g. /photo holiday.jpg")
        if len(self.pending) >= self.limits.max_photos_per_message:
            raise UserError(f"{len(self.pending)} photos are attached already, the most one message may carry; send it first")
        file = Path(path).expanduser()
        check_message_photos([(file, path)], self.limits, held=self.session.photo_count + len(self.pending))
        image = check_photo_file(file, self.limits, name=path)
        self.pending.append((path, image))
        self.say(f"attached {path}; it goes with your next message ({len(self.pending)} attached)")

    def reset(self, _argument: str = "") -> None:
        self.session.reset()
        self.pending.clear()
        self.say("new conversation: the model forgot everything said so far")

    def save(self, argument: str) -> None:
        if not self.session.history:
            raise UserError("nothing to save yet: the conversation is empty")
        path = self.session.save(Path(argument.strip("'\"")).expanduser() if argument else None)
        self.say(f"saved the conversation (PhotoChat format) to {path}")

    def help(self, _argument: str = "") -> None:
        self.say(HELP.format(out=self.session.out_dir))

    def quit(self, _argument: str = "") -> bool:
        return False

    # ------------------------------------------------------------ messages

    def send(self, text: str) -> None:
        """Send a message with the attached photos; print the reply and where its photos went."""
        text = check_message(text, len(self.pending), self.limits)
        before = self.session.snapshot()
        # Raises (history unchanged, photos still attached) when the photos cannot be written.
        self.session.add_user_message(text, [image for _, image in self.pending])
        self.pending.clear()
        try:
            reply = self.stream_reply()
        except Exception as err:  # noqa: BLE001 - a failed reply must not cost the conversation
            log.debug("reply failed", exc_info=True)
            self.session.restore(before)
            raise UserError(f"the model failed to reply ({type(err).__name__}: {err}); "
                            "the conversation is kept, try again") from err
        for path, caption in zip(self.session.add_reply(reply), reply.captions):
            if path is not None:
                self.say(f"  [photo: {caption}] saved to {path}")
        for problem in self.session.take_write_problems():
            self.say(f"  warning: {problem}; the reply is kept, with the photo as its caption")

    def stream_reply(self) -> Reply:
        """Print the reply as it is generated; returns it when it is finished (photos drawn)."""
        shown = ""
        self.write("bot> ")
        for event in self.engine.stream(self.session.history, self.settings):
            if isinstance(event, Waiting):
                self.write("(waiting for the model) ")
            elif isinstance(event, TextSoFar) and event.text.startswith(shown):
                self.write(event.text[len(shown):])
                shown = event.text
            elif isinstance(event, DrawingStep) and event.step == 1:
                self.write("\n  (drawing a photo...)")
            elif isinstance(event, Finished):
                reply = event.reply
        if not shown:  # nothing streamed (beam search), or the reply is empty
            self.write(reply.text or "(no reply)")
        elif reply.text.startswith(shown):
            self.write(reply.text[len(shown):])  # e.g. a caption left open, closed by the parser
        self.say("")
        return reply

    def say(self, text: str) -> None:
        self.write(text + "\n")

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

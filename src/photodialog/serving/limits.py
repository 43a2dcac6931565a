"""Checks on what a person sends to the chat: photo files and message text.

Every failure is a ``UserError`` whose message names the file (by the name the person knows,
not a server path) and says what to send instead, so that the terminal prints it and the web
page shows it while the server keeps serving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from photodialog import IMG_END, IMG_START
from photodialog.data.photos import load_photo
from photodialog.errors import DataError, UserError


@dataclass(frozen=True)
class InputLimits:
    """How much one message may carry."""

    max_photo_bytes: int = 10 * 1024 * 1024  # a phone photo is 2-8 MB
    # 40 megapixels decode to ~120 MB of RGB: several at once must fit a shared server's memory.
    max_photo_pixels: int = 40_000_000
    max_photos_per_message: int = 4
    max_message_chars: int = 2000

    @property
    def advice(self) -> str:
        return (f"send a PNG, JPEG, WebP, GIF or BMP photo of at most {self.max_photo_bytes / 2**20:.0f} MB "
                f"and {self.max_photo_pixels / 1e6:.0f} megapixels")


def check_photo_file(path: str | Path, limits: InputLimits, name: str | None = None):
    """The photo at ``path`` as an RGB PIL image, or a ``UserError`` saying why it cannot be used.

    ``name`` is how the person knows the file (an upload's original name); it defaults to
    ``path`` and is the only name the message shows.
    """
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise UserError(f"photo '{name}' not found; check the path")
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f"photo '{name}' is an empty file; {limits.advice}")
    if size > limits.max_photo_bytes:
        raise UserError(f"photo '{name}' is too large ({size / 2**20:.1f} MB); {limits.advice}")
    try:
        return load_photo(path, max_pixels=limits.max_photo_pixels)
    except DataError as err:
        raise UserError(f"'{name}' cannot be used as a photo: {_reason(err, path, name)}; {limits.advice}") from None


def _reason(err: DataError, path: Path, name: str) -> str:
    """``load_photo``'s diagnosis about "it" (the name is already said), without its dataset advice."""
    message = str(err).replace(f"photo {path}", "it").replace(str(path), "it")
    return message.split("; ", 1)[0]  # the part after is advice for dataset files


def check_message(text: str, photo_count: int, limits: InputLimits) -> str:
    """The message text to use (trimmed), or a ``UserError`` for an empty or over-long message.

    Typed ``[IMG]``/``[/IMG]`` markers are removed: in a turn they mean "a photo is here", and
    a person shares photos by attaching them, not by typing markers with no pixels behind them.
    """
    text = (text or "").replace(IMG_START, " ").replace(IMG_END, " ")
    text = " ".join(text.split())
    if not text and photo_count == 0:
        raise UserError("the message is empty; type something or attach a photo")
    if len(text) > limits.max_message_chars:
        raise UserError(f"the message is {len(text):,} characters long; keep it under {limits.max_message_chars:,}")
    if photo_count > limits.max_photos_per_message:
        raise UserError(f"{photo_count} photos attached; attach at most {limits.max_photos_per_message} per message")
    return text

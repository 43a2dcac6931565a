"""Checks on what a person sends to the chat: photo files, message text, and how much of both.

Every failure is a ``UserError`` whose message names the file (by the name the person knows,
not a server path) and says what to send instead, so that the terminal prints it and the web
page shows it while the server keeps serving.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from photodialog import IMG_END, IMG_START
from photodialog.data.photos import load_photo
from photodialog.errors import DataError, UserError


@dataclass(frozen=True)
class InputLimits:
    """How much one message, one conversation and the whole server may take in."""

    max_photo_bytes: int = 10 * 1024 * 1024  # a phone photo is 2-8 MB
    # 40 megapixels decode to ~120 MB of RGB: several at once must fit a shared server's memory.
    max_photo_pixels: int = 40_000_000
    max_photos_per_message: int = 4
    # All photos of one message together (from their headers, before any is decoded): a photo
    # compressed to a few KB can still decode to 40 megapixels.
    max_message_pixels: int = 60_000_000
    max_message_chars: int = 2000
    # Photos one conversation may hold: every reply perceives all of them again.
    max_session_photos: int = 32
    # A person's photo is kept (and given to the model) at most this many pixels on its longer
    # side: the model sees 224 px (BLIP-2) to 512 px (Stable Diffusion), and a conversation's
    # photos then stay small in memory and on disk whatever was uploaded.
    kept_photo_side: int = 1024
    max_history_bytes: int = 4 * 1024 * 1024  # chat --history: a dialogue, not a dataset
    # serve: megapixels being decoded at once over all visitors, and the web framework's upload cache.
    max_decoding_pixels: int = 120_000_000
    max_upload_cache_bytes: int = 512 * 1024 * 1024

    @property
    def advice(self) -> str:
        return (f"send a PNG, JPEG, WebP, GIF or BMP photo of at most {self.max_photo_bytes / 2**20:.0f} MB "
                f"and {self.max_photo_pixels / 1e6:.0f} megapixels")


def check_photo_file(path: str | Path, limits: InputLimits, name: str | None = None):
    """The photo at ``path`` as an RGB PIL image, or a ``UserError`` saying why it cannot be used.

    ``name`` is how the person knows the file (an upload's original name); it defaults to
    ``path`` and is the only name the message shows. A photo larger than
    ``limits.kept_photo_side`` is scaled down (aspect kept) right after decoding.
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
        image = load_photo(path, max_pixels=limits.max_photo_pixels)
    except DataError as err:
        raise UserError(f"'{name}' cannot be used as a photo: {_reason(err, path, name)}; {limits.advice}") from None
    return kept_size(image, limits.kept_photo_side)


def kept_size(image, side: int):
    """``image`` scaled down so that its longer side is at most ``side`` (itself when it already is)."""
    if max(image.size) <= side:
        return image
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image

    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    smaller = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    image.close()
    return smaller


def declared_pixels(path: str | Path) -> int:
    """Width x height from a photo file's header (nothing decoded); 0 when it cannot be read.

    A file that cannot be read is left to ``check_photo_file``, which says what is wrong with it.
    """
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - PIL raises many types for a bad file; reported by the full check
        return 0


def check_message_photos(paths: list[tuple[Path, str]], limits: InputLimits, held: int = 0) -> int:
    """Check one message's photos before decoding any; returns their pixels (from the headers).

    ``paths``: (file, name the person knows) pairs; ``held``: photos the conversation already
    holds. Raises ``UserError`` when there are too many photos for the message or the
    conversation, or too many pixels together.
    """
    if len(paths) > limits.max_photos_per_message:
        raise UserError(f"{len(paths)} photos attached; attach at most {limits.max_photos_per_message} per message")
    if held + len(paths) > limits.max_session_photos:
        raise UserError(f"this conversation holds {held} photos and may hold {limits.max_session_photos}; "
                        "start a new one (New chat, or /reset) to share more")
    pixels = sum(declared_pixels(path) for path, _ in paths)
    if pixels > limits.max_message_pixels:
        names = ", ".join(f"'{name}'" for _, name in paths)
        raise UserError(f"the photos {names} are {pixels / 1e6:.0f} megapixels together, over the limit of "
                        f"{limits.max_message_pixels / 1e6:.0f} per message; send fewer or smaller photos")
    return pixels


class PixelBudget:
    """Megapixels being decoded at once over the whole server; a request over budget is refused.

    ``with budget.reserve(pixels):`` around the decoding of one message. Refusing (a message
    to send again) rather than waiting keeps a burst of huge uploads from queueing up memory.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.in_use = 0
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self, pixels: int):
        with self._lock:
            if self.in_use and self.in_use + pixels > self.limit:
                raise UserError("the server is busy decoding other visitors' photos; send your message again in a moment")
            self.in_use += pixels  # a single message over the limit is refused by max_message_pixels, not here
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= pixels


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

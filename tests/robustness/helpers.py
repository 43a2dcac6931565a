"""Builders for the robustness tests: PNG files Pillow cannot write (16-bit, tRNS), deep JSON."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from photodialog.models.generation_settings import GenerationSettings

FAST_FLAGS = ["--max-new-tokens", "6", "--diffusion-steps", "2", "--device", "cpu"]
FAST = GenerationSettings(max_new_tokens=6, diffusion_steps=2)
LEVELS = 64  # the ramp: 64 grey levels from black to white


def png_bytes(pixels: np.ndarray, color_type: int, bit_depth: int, chunks: tuple = ()) -> bytes:
    """A PNG file's bytes, written by hand so that any bit depth and colour type can be made.

    ``pixels``: HxW or HxWxC integers at ``bit_depth``; ``color_type``: 0 grey, 2 RGB,
    4 grey+alpha, 6 RGBA; ``chunks``: extra (tag, data) chunks before the image data (tRNS).
    """
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width, -1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    def row_bytes(row: np.ndarray) -> bytes:
        if bit_depth == 16:
            return row.astype(">u2").tobytes()
        if bit_depth == 8:
            return row.astype(np.uint8).tobytes()
        bits = np.unpackbits(row.astype(np.uint8).reshape(-1, 1), axis=1)[:, 8 - bit_depth:]
        return np.packbits(bits.reshape(-1)).tobytes()

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = zlib.compress(b"".join(b"\0" + row_bytes(row) for row in rows))
    body = chunk(b"IHDR", header) + b"".join(chunk(tag, value) for tag, value in chunks)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def ramp16(width_per_level: int = 1, height: int = 4) -> np.ndarray:
    """A 16-bit grey ramp of ``LEVELS`` steps, black (0) to white (65535), as an HxW array."""
    levels = np.arange(LEVELS, dtype=np.int64) * 65535 // (LEVELS - 1)
    return np.tile(np.repeat(levels, width_per_level), (height, 1))


def write_ramp_png(path: Path, width_per_level: int = 1, height: int = 4) -> Path:
    """The issue's input: a 16-bit greyscale PNG ramp of 64 levels (Pillow opens it as ``I;16``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(ramp16(width_per_level, height), color_type=0, bit_depth=16))
    return path


def grey_levels(image) -> int:
    """How many distinct values the red channel of an RGB image holds."""
    return int(np.unique(np.asarray(image)[..., 0]).size)


def nested_json(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep: ``[[[...]]]``."""
    return "[" * depth + "]" * depth


class DrawingEngine:
    """Stands in for ``ChatEngine`` in front-end tests: replies at once, with one drawn photo.

    ``calls`` counts the replies, so a test can say that the model never ran.
    """

    caption = "a red car at the beach"

    def __init__(self):
        self.calls = 0

    def reply(self, history, settings):
        from PIL import Image

        from photodialog.models.generation import Reply

        self.calls += 1
        return Reply(text=f"look [IMG] {self.caption} [/IMG]", captions=[self.caption],
                     photos=[Image.new("RGB", (16, 16), (200, 30, 30))])

    def stream(self, history, settings):
        from photodialog.serving.engine import Finished

        yield Finished(self.reply(history, settings))


def terminal_chat(session, lines: list[str], engine=None):
    """A ``TerminalChat`` fed ``lines`` (then end of input); returns (exit code, printed text, engine)."""
    import io

    from photodialog.serving.terminal import TerminalChat

    engine = engine or DrawingEngine()
    feed = iter(lines)

    def read_line(_prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    code = TerminalChat(engine, session, FAST, read_line=read_line, out=out).run()
    return code, out.getvalue(), engine


def leftovers(folder: Path) -> list[Path]:
    """Temporary files left anywhere under ``folder`` (``*.tmp``, write checks)."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".photodialog-write-check")]

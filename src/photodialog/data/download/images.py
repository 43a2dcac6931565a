"""Check that a fetched file is a whole image, and put it in place atomically.

A photo is only ever visible under its final name once it has been fully decoded by Pillow:
it is streamed to a hidden temporary file next to its destination (``.NAME.XXXX.part``) and
renamed over it, so an interrupted or killed run never leaves a partial photo behind.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from photodialog.data import photos
from photodialog.data.layout import IMAGE_EXTENSIONS, PHOTO_DIR
from photodialog.data.photos import DEFAULT_MAX_PIXELS, PhotoFileError, PhotoFileInfo

# Formats a photo may keep; anything else Pillow can read is re-encoded as PNG so that
# `find_photo` (which knows only IMAGE_EXTENSIONS) finds it. MPO is what many cameras write:
# a JPEG with extra frames, readable by any JPEG decoder.
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
PART_SUFFIX = ".part"
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")

# The manifest's reason for each way the loader's decode check can reject a file. These
# strings are counted in the download summary, so they stay fixed whatever the messages say.
REJECTION_REASONS = {
    photos.NOT_AN_IMAGE: "corrupt image: unknown format",
    photos.TOO_LARGE: "too many pixels",
}
OTHER_REJECTION = "corrupt image: cannot decode"


class ImageRejected(Exception):
    """The bytes are not a usable image; ``reason`` says why (stable, for counting)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoFileInfo:
    """Fully decode ``path`` as the loader will; raise ``ImageRejected`` if the loader would refuse it.

    The same check and pixel limit as ``photos.verify_photo``: a photo kept here is one that
    training can open (a second, laxer check would keep photos the loader then treats as missing).
    """
    try:
        return photos.inspect_photo(path, max_pixels=max_pixels)
    except PhotoFileError as err:
        raise ImageRejected(REJECTION_REASONS.get(err.kind, OTHER_REJECTION)) from None
    except MemoryError:
        raise ImageRejected(OTHER_REJECTION) from None


def temp_path_for(root: str | Path, stem: str) -> Path:
    """A fresh hidden temporary name in the folder where ``stem`` will live."""
    final = Path(root) / PHOTO_DIR / stem
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")


def place_photo(tmp: Path, root: str | Path, stem: str, checked: PhotoFileInfo) -> Path:
    """Rename a checked temporary file to ``photos/<stem><ext>``; returns the final path."""
    extension = FORMAT_EXTENSIONS.get(checked.format)
    if extension is None:
        tmp = _reencode_as_png(tmp)
        extension = ".png"
    final = Path(root) / PHOTO_DIR / f"{stem}{extension}"
    os.replace(tmp, final)
    _remove_other_extensions(final)
    return final


def _reencode_as_png(tmp: Path) -> Path:
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image

    png = tmp.with_name(tmp.name + ".png" + PART_SUFFIX)
    with Image.open(tmp) as image:
        # PNG holds these modes as they are (16-bit grey included); any other (a float or CMYK
        # TIFF, say) becomes 8-bit RGB by the loader's own conversion, its tonal range kept.
        kept = image if image.mode in PNG_MODES else photos.as_rgb(image)
        kept.save(png, format="PNG")
    tmp.unlink()
    return png


def _remove_other_extensions(final: Path) -> None:
    """A photo re-fetched in another format must not leave its old file to shadow it."""
    stem_name = final.name[: -len(final.suffix)]
    for extension in IMAGE_EXTENSIONS:
        other = final.with_name(stem_name + extension)
        if other != final and other.is_file():
            other.unlink()


def remove_stale_parts(root: str | Path) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    photos = Path(root) / PHOTO_DIR
    if not photos.is_dir():
        return 0
    stale = [p for p in photos.rglob(f".*{PART_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink()
    return len(stale)

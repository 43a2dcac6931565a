"""Opening photo files safely: RGB, fully decoded, upright, and not absurdly large.

Photos come from the internet (PhotoChat's Flickr URLs, DialogCC's CC3M URLs), so a file may
be an HTML error page saved as ``.jpg``, a download cut short, or a decompression bomb. Each of
these becomes a ``DataError`` naming the file and what to do, never a PIL traceback.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from photodialog.errors import DataError

# 64 megapixels: far above any photo a dialogue model needs (they are resized to a few hundred
# pixels), far below what would exhaust memory when decoded (an 8-bit RGB image of this size
# takes about 200 MB).
DEFAULT_MAX_PIXELS = 8192 * 8192

_FIX_HINT = "delete it and fetch it again (photodialog data download), or replace it with a valid image"

# Why a photo file cannot be used, for callers that count problems (`data download`'s manifest).
MISSING, UNREADABLE, NOT_AN_IMAGE, TOO_LARGE, CORRUPT = "missing", "unreadable", "not an image", "too large", "corrupt"


class PhotoFileError(DataError):
    """A photo file that cannot be used: the message names the file, ``kind`` says why."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class PhotoFileInfo:
    """What a full decode learnt about a photo file."""

    format: str  # PIL's name of the file format: JPEG, PNG, MPO, ...
    width: int
    height: int


def load_photo(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Open ``path`` as an RGB ``PIL.Image.Image``, fully decoded and EXIF-rotated.

    Transparent images are composited on white (a photo model has no alpha channel, and
    black, PIL's default, would change the picture). Raises ``DataError`` for a missing,
    unreadable, truncated, non-image or over-large file (a ``PhotoFileError``, whose ``kind`` says which).
    """
    from PIL import ImageOps

    image = _open_decoded(Path(path), max_pixels)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block should not cost the photo
        pass
    return _to_rgb(image)


def verify_photo(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Decode ``path`` completely (so truncation is found) and return its (width, height).

    Cheaper than ``load_photo`` (no rotation or colour conversion); for dataset checks.
    """
    info = inspect_photo(path, max_pixels=max_pixels)
    return info.width, info.height


def inspect_photo(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoFileInfo:
    """Like ``verify_photo``, plus the file's format; raises ``PhotoFileError``.

    `data download` accepts a photo with this check, so that it never keeps a file that
    loading it for training would reject.
    """
    image = _open_decoded(Path(path), max_pixels)
    info = PhotoFileInfo(format=str(image.format), width=image.width, height=image.height)
    image.close()
    return info


def _open_decoded(path: Path, max_pixels: int):
    """Open and fully decode ``path``; every failure becomes a ``PhotoFileError`` naming the file."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise PhotoFileError(
            f"photo file not found: {path}; check the dataset's photos/ folder or fetch the photo again", MISSING
        )
    with warnings.catch_warnings():
        # The pixel limit is checked below with a clear message; PIL's own warning would only add noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise PhotoFileError(f"{path} is not an image file PIL can read; {_FIX_HINT}", NOT_AN_IMAGE) from None
        except Image.DecompressionBombError as err:
            raise PhotoFileError(f"{path} is too large to decode safely ({err}); resize it first", TOO_LARGE) from None
        except OSError as err:
            raise PhotoFileError(
                f"cannot open photo {path}: {err.strerror or err}; check its permissions", UNREADABLE
            ) from None
        _check_size(path, image, max_pixels)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            # PIL reports a cut-short file as OSError("image file is truncated ...") at decode
            # time, and some multi-frame formats as EOFError.
            image.close()
            raise PhotoFileError(f"photo {path} is truncated or corrupt ({err}); {_FIX_HINT}", CORRUPT) from None
    return image


def _check_size(path: Path, image, max_pixels: int) -> None:
    width, height = image.size
    problem = None
    if width <= 0 or height <= 0:
        problem = PhotoFileError(f"photo {path} has an empty size {width}x{height}; {_FIX_HINT}", CORRUPT)
    elif width * height > max_pixels:
        problem = PhotoFileError(
            f"photo {path} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (a guard against decompression bombs); resize it, or raise max_pixels "
            "if the file is trusted",
            TOO_LARGE,
        )
    if problem is not None:
        image.close()  # the caller never gets the image, so nobody else would close its file
        raise problem


def _to_rgb(image):
    """RGB, with any transparency composited on white."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background

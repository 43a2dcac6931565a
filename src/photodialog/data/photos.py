"""Opening photo files safely: RGB, fully decoded, upright, and not absurdly large.

Photos come from the internet (PhotoChat's Flickr URLs, DialogCC's CC3M URLs), so a file may
be an HTML error page saved as ``.jpg``, a download cut short, or a decompression bomb. Each of
these becomes a ``DataError`` naming the file and what to do, never a PIL traceback.
"""

from __future__ import annotations

import io
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

    Every Pillow mode becomes 8-bit RGB with its tonal range kept (16-bit and float images
    are scaled, not clipped) and transparency composited on white: see ``as_rgb``. Raises ``DataError`` for a missing,
    unreadable, truncated, non-image or over-large file (a ``PhotoFileError``, whose ``kind`` says which).
    """
    # only photo work needs Pillow; keeps light callers light
    from PIL import ImageOps

    image = _open_decoded(Path(path), max_pixels)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block should not cost the photo
        pass
    return as_rgb(image)


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
    # only photo work needs Pillow; keeps light callers light
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


def as_rgb(image):
    """``image`` (a PIL image of any mode) as 8-bit RGB, with its full tonal range kept.

    Pillow's own ``convert("RGB")`` clips the modes that hold more than 8 bits per pixel: a
    16-bit greyscale PNG (mode ``I;16``) becomes almost all white. Those modes are scaled here
    (``_wide_to_grey8``). Transparency (an alpha channel, a palette's or a greyscale PNG's
    ``transparency`` value) is composited on white: a photo model has no alpha channel, and
    black, Pillow's default, would change the picture. CMYK and CIELab images are converted with
    colour management when Pillow has it (an embedded ICC profile for CMYK).
    Every photo photodialog reads goes through here (``load_photo``), so training, chat, serve,
    eval and ``data check`` see the same pixels.
    """
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image

    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in WIDE_MODES:
        return _wide_to_rgb(image)
    if mode in ("CMYK", "LAB"):
        return _colour_managed(image)
    if mode == "La":  # premultiplied alpha, which Pillow cannot convert: on white it is L + (255 - A)
        # only this path needs numpy; keeps light callers light
        import numpy as np

        luminance, alpha = np.moveaxis(np.asarray(image, dtype=np.uint16), -1, 0)
        return Image.fromarray((luminance + 255 - alpha).clip(0, 255).astype(np.uint8)).convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "PA") or (mode in ("P", "L", "RGB", "1") and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


# Pillow modes with more than 8 bits per pixel: 16-bit unsigned in several byte orders, 32-bit
# signed integers, 32-bit floats. All are single-channel (16-bit RGB PNGs are opened as 8-bit RGB).
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I;16LS", "I;16BS", "I", "F")
_SIXTEEN_BIT_MAX = 65535.0


def _wide_to_rgb(image):
    """A wide single-channel image as 8-bit RGB, transparency (a PNG's tRNS value) on white."""
    # only this path needs numpy; keeps light callers light
    import numpy as np
    from PIL import Image

    raw = np.asarray(image)
    grey = _wide_to_grey8(raw, image.mode)
    transparent = image.info.get("transparency")
    if isinstance(transparent, (int, float)):
        grey[raw == transparent] = 255
    return Image.fromarray(grey).convert("RGB")


def _wide_to_grey8(values, mode: str):
    """``values`` (an HxW array of a wide mode) as uint8, 0 -> 0 and full scale -> 255.

    ``I;16*``: the full scale is 65535 (a 16-bit file). Pillow records no bit depth for ``I``
    and ``F``, so it is inferred from the values: floats within [0, 1] are fractions of full
    scale; values within [0, 255] are 8-bit; within [0, 65535], 16-bit; anything else (negative
    values, 32-bit counts) is stretched linearly from its minimum to its maximum.
    """
    # only this path needs numpy; keeps light callers light
    import numpy as np

    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if mode.startswith("I;16") and not mode.endswith("S"):
        scale, low = 255.0 / _SIXTEEN_BIT_MAX, 0.0
    else:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low >= 0 and high <= 1.0 and mode == "F":
            scale, low = 255.0, 0.0
        elif low >= 0 and high <= 255:
            scale, low = 1.0, 0.0
        elif low >= 0 and high <= _SIXTEEN_BIT_MAX:
            scale, low = 255.0 / _SIXTEEN_BIT_MAX, 0.0
        else:
            scale = 255.0 / (high - low) if high > low else 0.0
    values -= low
    values *= scale
    return np.rint(values, out=values).clip(0, 255).astype(np.uint8)


def _colour_managed(image):
    """CMYK or CIELab as sRGB through Pillow's colour management; a plain conversion without it."""
    try:
        # may be missing: the except below handles it
        from PIL import ImageCms

        if image.mode == "LAB":
            source = ImageCms.createProfile("LAB")
        elif image.info.get("icc_profile"):
            source = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        else:
            return image.convert("RGB")
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 - no littlecms, or a broken profile: the plain conversion still shows the photo
        return image.convert("RGB")

"""Where things live inside a dataset folder, shared by the loaders, `data download` and `data synth`.

A dataset folder looks like::

    DIR/
      train/ dev/ test/        PhotoChat: JSON arrays (published files) or JSONL, any file names
      train.json valid.json    DialogCC: JSON records / JSONL per split (or a `datasets` folder)
      photos/                  one file per photo, named by ``photo_stem``; any image extension
      photos/manifest.jsonl    what `data download` fetched or failed to fetch, and why
      world.json               only in a synthetic world: its attributes and generator settings
      probe/                   only in a synthetic world: the trained photo probe

Splits are named ``train``, ``dev`` and ``test``; DialogCC's ``valid`` is read as ``dev``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SPLITS = ("train", "dev", "test")
SPLIT_ALIASES = {"valid": "dev", "validation": "dev", "val": "dev"}
PHOTO_DIR = "photos"
MANIFEST = "manifest.jsonl"
WORLD_FILE = "world.json"  # what makes a folder a synthetic world (data/synth/world.py)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def canonical_split(name: str) -> str:
    """``valid`` -> ``dev``; other names unchanged (lower-cased)."""
    name = name.strip().lower()
    return SPLIT_ALIASES.get(name, name)


def photo_stem(photo_id: str | None, url: str | None) -> str:
    """The file name (without extension) of a photo under ``photos/``.

    PhotoChat's ``photo_id`` ("train/624e5f6dd7f64d89") keeps its folder; photos known only by
    URL (DialogCC, or PhotoChat files without ``photo_id``) are named by a hash of the URL, so
    the same URL is downloaded once however many dialogues share it.
    """
    stems = photo_stems(photo_id, url)
    if not stems:
        raise ValueError("a photo needs a photo_id or a URL to be stored")
    return stems[0]


def photo_stems(photo_id: str | None, url: str | None) -> list[str]:
    """Every name a photo may be stored under, in the order to look: by id, then by URL.

    ``photo_stem`` is the first; the URL's name is a second chance for a file fetched before
    the record had a ``photo_id``. An id with nothing usable in it ("..") gives no name.
    """
    stems = []
    if photo_id:
        parts = [_UNSAFE.sub("_", p) for p in str(photo_id).split("/") if p not in ("", ".", "..")]
        if parts:
            stems.append("/".join(parts))
    if url:
        stems.append("url/" + hashlib.sha1(url.encode("utf-8")).hexdigest()[:20])
    return stems


def find_photo(root: str | Path, stem: str) -> Path | None:
    """The local file for ``stem`` under ``root/photos``, whatever its image extension, or None."""
    base = Path(root) / PHOTO_DIR / stem
    for ext in IMAGE_EXTENSIONS:
        candidate = base.with_name(base.name + ext)
        if candidate.is_file():
            return candidate
    return None

"""Where a photo can come from, tried in order until one serves it.

For each photo not yet in the folder, `data download` tries:

1. ``open_images`` (PhotoChat only, with ``--open-images``): the Open Images file named by the
   record's ``photo_id`` ("train/624e5f6dd7f64d89" is Open Images' train image 624e5f6dd7f64d89).
   Either a local folder (``DIR/train/624e5f6dd7f64d89.jpg`` or ``DIR/624e5f6dd7f64d89.jpg``)
   or a URL template with ``{photo_id}`` (``train/624e...``) or ``{image_id}`` (``624e...``),
   e.g. a mirror of the CVDF bucket.
2. ``url``: the record's own ``photo_url`` (PhotoChat) or ``image_url`` (DialogCC).
3. ``hub`` (with ``--photo-source``): a mirror of the photos that the user names, a Hugging Face
   Hub dataset repository (listed and addressed through ``huggingface_hub``) or a local copy of
   one: one file per photo, named by the photo's stem under ``photos/`` (``train/624e....jpg``
   for PhotoChat; ``url/<hash>.jpg`` for photos known by URL), optionally under a ``photos/``
   folder, any image extension.
4. ``generator`` (with ``--fallback-generator``): the photo drawn from its caption
   (``fallback.py``).

Every source ends in the same fetcher (``photos.fetch_photos``: limits, decode check, atomic
placement, Ctrl-C), with ``file://`` URLs for local folders.

**What the records may name.** The dialogue files come from elsewhere (a mirror, an unpinned Hub
dataset), so what they say is data, never a place on this machine: a record's own URL is fetched
only when it is ``http(s)://`` (``photos.plan_photos``), and a ``photo_id`` is used only when it is
a plain relative name (``safe_photo_id``: no ``..``, no leading ``/``, no backslash, no ``?#%``),
so that it never leaves the ``--open-images`` folder or the template's path. The folders given on
the command line (``--open-images DIR``, ``--photo-source DIR``, ``--base-url file://...``) are
the user's own and stay allowed. The manifest line of each photo
says which source served it (``source``) and why each earlier one failed (``tried``: a list of
``{"source", "reason"}``, in order).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from photodialog.data.download.manifest import FAILED, ManifestEntry
from photodialog.data.download.sources import PhotoRef
from photodialog.data.layout import IMAGE_EXTENSIONS
from photodialog.errors import UserError

OPEN_IMAGES, URL, HUB, GENERATOR = "open_images", "url", "hub", "generator"
SOURCE_ORDER = (OPEN_IMAGES, URL, HUB, GENERATOR)
TEMPLATE_FIELDS = ("photo_id", "image_id")
# Open Images ids are "train/624e5f6dd7f64d89": folder names and hex digits.
_PLAIN_ID_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def safe_photo_id(photo_id: str) -> str | None:
    """``photo_id`` when it is a plain relative name (parts of letters, digits, ``_.-``, not
    starting with a dot: no ``..``, no absolute path, no URL syntax), else None."""
    parts = str(photo_id).rstrip("/").split("/")
    if all(_PLAIN_ID_PART.fullmatch(part) for part in parts):
        return "/".join(parts)
    return None


def tried_sources(entry: ManifestEntry | None) -> set[str]:
    """The sources that already failed for this photo (a failed line of an older manifest: its URL)."""
    if entry is None or entry.status != FAILED:
        return set()
    if entry.tried is None:
        return {URL}
    return {attempt.get("source") for attempt in entry.tried}


def with_attempt(tried: list[dict] | None, source: str, reason: str) -> list[dict]:
    """``tried`` with this source's failure last (an earlier failure of the same source replaced)."""
    kept = [attempt for attempt in (tried or []) if attempt.get("source") != source]
    return kept + [{"source": source, "reason": reason}]


@dataclass
class Candidates:
    """Where one source would fetch each photo from; ``misses`` are photos it cannot serve, with why."""

    urls: dict[str, str] = field(default_factory=dict)  # stem -> URL (file:// for local folders)
    misses: dict[str, str] = field(default_factory=dict)  # stem -> reason


class OpenImages:
    """Open Images files by ``photo_id``: a local folder or a URL template."""

    name = OPEN_IMAGES

    def __init__(self, location: str):
        self.location = location
        self.folder = None if "{" in location else Path(location).expanduser()
        if self.folder is None:
            _check_template(location)
        if self.folder is not None and not self.folder.is_dir():
            raise UserError(
                f"--open-images {location!r} is not a folder; give the folder of the Open Images files, "
                "or a URL template such as https://HOST/{photo_id}.jpg"
            )

    def candidates(self, refs: Iterable[PhotoRef]) -> Candidates:
        """Where each photo can be fetched from: a file of the Open Images folder, or a URL built from its
        ``photo_id``; the photos it cannot place are in ``misses`` with the reason.
        """
        found = Candidates()
        for ref in refs:
            if not ref.photo_id:
                found.misses[ref.stem] = "no photo_id in the record"
                continue
            photo_id = safe_photo_id(ref.photo_id)
            if photo_id is None:  # it would name a file outside the folder, or another URL
                found.misses[ref.stem] = "the record's photo_id is not a plain Open Images id"
                continue
            image_id = photo_id.rsplit("/", 1)[-1]
            if self.folder is None:
                found.urls[ref.stem] = self.location.format(photo_id=photo_id, image_id=image_id)
                continue
            path = _first_file(self.folder, [photo_id, image_id])
            if path is None:
                found.misses[ref.stem] = f"not in the Open Images folder {self.folder}"
            else:
                found.urls[ref.stem] = path.resolve().as_uri()
        return found


class HubMirror:
    """A mirror of the photos, one file per photo stem: a Hub dataset repository or a local copy."""

    name = HUB

    def __init__(self, repo: str, revision: str | None = None):
        self.repo, self.revision = repo, revision
        self.folder = Path(repo).expanduser() if Path(repo).expanduser().is_dir() else None
        self._files: dict[str, str] | None = None

    def _index(self) -> dict[str, str]:
        """Stem -> file in the mirror, listed once."""
        if self._files is None:
            names = self._local_names() if self.folder is not None else self._hub_names()
            self._files = {}
            for name in names:
                stem, dot, ext = name.rpartition(".")
                if dot and f".{ext.lower()}" in IMAGE_EXTENSIONS:
                    self._files.setdefault(stem.removeprefix("photos/"), name)
        return self._files

    def _local_names(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def _hub_names(self) -> list[str]:
        # the Hugging Face stack is slow to import: only this path needs it
        import huggingface_hub

        try:
            return huggingface_hub.HfApi().list_repo_files(self.repo, repo_type="dataset", revision=self.revision)
        except Exception as err:  # noqa: BLE001 - network, auth and not-found errors all mean "unusable"
            raise UserError(
                f"--photo-source {self.repo!r}: cannot list the Hub dataset ({type(err).__name__}: {err}). Give a "
                "Hub dataset id this machine can reach, or a local folder with one file per photo stem."
            ) from None

    def candidates(self, refs: Iterable[PhotoRef]) -> Candidates:
        """Where each photo is in the mirror (a local file or a hub URL); the others are in ``misses``."""
        found = Candidates()
        refs = list(refs)
        index = self._index() if refs else {}
        for ref in refs:
            name = index.get(ref.stem)
            if name is None:
                found.misses[ref.stem] = f"not in the mirror {self.repo}"
            elif self.folder is not None:
                found.urls[ref.stem] = (self.folder / name).resolve().as_uri()
            else:
                # the Hugging Face stack is slow to import: only this path needs it
                import huggingface_hub

                found.urls[ref.stem] = huggingface_hub.hf_hub_url(self.repo, name, repo_type="dataset", revision=self.revision)
        return found


def _check_template(location: str) -> None:
    """``UserError`` unless ``location`` is a format string whose only fields are ``{photo_id}`` / ``{image_id}``."""
    try:
        fields = {name for _, name, spec, conversion in string.Formatter().parse(location) if name is not None}
        location.format(photo_id="train/0", image_id="0")
    except (ValueError, KeyError, IndexError, AttributeError) as err:
        raise UserError(f"--open-images {location!r} is not a usable URL template ({err}); write it as "
                        "https://HOST/{photo_id}.jpg, with {photo_id} or {image_id} and no other braces") from None
    if not fields & set(TEMPLATE_FIELDS) or fields - set(TEMPLATE_FIELDS):
        raise UserError(f"--open-images {location!r}: a URL template needs {{photo_id}} or {{image_id}} and no other "
                        "{...} fields")


def _first_file(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
            candidate = folder / f"{name}{ext}"
            if candidate.is_file():
                return candidate
    return None

"""``photos/manifest.jsonl``: one line per photo, saying what happened to it and why.

Lines are appended as results arrive (and flushed), so a killed run keeps everything it
learnt; at the end of a run the file is rewritten with exactly one line per photo, the
newest state of each. A torn last line from a killed run is skipped when reading.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from photodialog.data.layout import MANIFEST, PHOTO_DIR

OK, FAILED, GENERATED = "ok", "failed", "generated"
STATUSES = (OK, FAILED, GENERATED)


@dataclass
class ManifestEntry:
    """What the download knows about one photo.

    ``path`` is relative to the dataset folder (``photos/train/624e5f6dd7f64d89.jpg``) and set
    whenever a file exists; ``reason`` says why a fetch failed (``http 404``, ``timeout``,
    ``not an image: text/html``, ``too large: > N bytes``, ``corrupt image: cannot decode``...)
    and is kept for ``generated`` photos, with ``model`` and ``prompt`` saying how they were drawn.
    ``source`` names the photo source that served it (``open_images``, ``url``, ``hub`` or
    ``generator``; for a failed photo, the last one tried) and ``tried`` lists, in order, each
    source that failed before, as ``{"source", "reason"}`` (``photo_sources.py``).
    """

    url: str | None
    stem: str
    status: str
    path: str | None = None
    reason: str = ""
    bytes: int = 0
    attempts: int = 0
    model: str | None = None
    prompt: str | None = None
    source: str | None = None
    tried: list[dict] | None = None

    def to_json(self) -> str:
        """The entry as one JSON line (None fields left out, except ``url`` and ``path``)."""
        record = {k: v for k, v in asdict(self).items() if v is not None or k in ("url", "path")}
        return json.dumps(record, ensure_ascii=False)

    @classmethod
    def from_dict(cls, record: dict) -> ManifestEntry:
        """An entry from a parsed manifest line; keys of other versions are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


def manifest_path(root: str | Path) -> Path:
    """``ROOT/photos/manifest.jsonl``: what the download fetched, failed or generated."""
    return Path(root) / PHOTO_DIR / MANIFEST


def load_manifest(root: str | Path) -> dict[str, ManifestEntry]:
    """The newest entry of every photo in the folder's manifest, by stem (empty if none)."""
    path = manifest_path(root)
    entries: dict[str, ManifestEntry] = {}
    if not path.is_file():
        return entries
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = _parse_line(line)
            if entry is not None:
                entries[entry.stem] = entry
    return entries


def _parse_line(line: str) -> ManifestEntry | None:
    try:
        record = json.loads(line)
        entry = ManifestEntry.from_dict(record)
    except (json.JSONDecodeError, TypeError):
        return None  # a line torn by a killed run: that photo is simply looked at again
    return entry if entry.stem and entry.status in STATUSES else None


class ManifestWriter:
    """Appends entries as they come; ``rewrite`` leaves one line per photo."""

    def __init__(self, root: str | Path):
        self.path = manifest_path(root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")

    def append(self, entry: ManifestEntry) -> None:
        """Write one entry and flush it, so a killed download keeps every line written so far."""
        self._handle.write(entry.to_json() + "\n")
        self._handle.flush()

    def rewrite(self, entries: dict[str, ManifestEntry]) -> None:
        """Replace the file with one line per photo, atomically."""
        self._handle.close()
        tmp = self.path.with_name(f".{self.path.name}.part")
        with open(tmp, "w", encoding="utf-8") as handle:
            for entry in entries.values():
                handle.write(entry.to_json() + "\n")
        tmp.replace(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        """Close the manifest file."""
        self._handle.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Where an evaluation writes, and what: the result JSON, its Markdown, the photos, the predictions.

For ``--out DIR/test.json`` (default: ``<checkpoint>/eval/<split>.json``)::

    DIR/test.json                    the eval result (schema photodialog.eval/1)
    DIR/test.md                      Table 2, share moment, probe scores, per-seed tables, settings
    DIR/test-predictions.jsonl       one line per target turn: index, dialogue_id, turn_index, speaker,
                                     gold, predicted, captions, photos_by_seed (+ predicted_by_seed
                                     when sampling gives each seed its own reply)
    DIR/test-photos/seed-0/00042.png the photo drawn for target 42 with seed 0 (IS/FID's generated set)
    DIR/test-photos/seed-0-gold-captions/00042.png   drawn from target 42's gold caption (probe check)

Photos are named by the target's index, which the predictions file maps to the dialogue and turn.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photodialog.errors import UserError
from photodialog.files import write_text  # noqa: F401  (also imported from here)
from photodialog.output_files import writable_file


@dataclass(frozen=True)
class EvalPaths:
    """The files of one evaluation, all derived from the result JSON's path."""

    json: Path

    @property
    def folder(self) -> Path:
        return self.json.parent

    @property
    def markdown(self) -> Path:
        return self.json.with_suffix(".md")

    @property
    def predictions(self) -> Path:
        return self.folder / f"{self.json.stem}-predictions.jsonl"

    @property
    def photos(self) -> Path:
        return self.folder / f"{self.json.stem}-photos"

    def seed_photos(self, seed: int, *, gold_captions: bool = False) -> Path:
        return self.photos / (f"seed-{seed}-gold-captions" if gold_captions else f"seed-{seed}")

    def relative(self, path: Path) -> str:
        """``path`` relative to the result's folder (how the predictions file names photos)."""
        return path.relative_to(self.folder).as_posix()


def eval_paths(out: str | os.PathLike | None, checkpoint: str | os.PathLike, split: str) -> EvalPaths:
    """The paths for ``--out`` (a ``.json`` file), by default ``<checkpoint>/eval/<split>.json``."""
    path = Path(out) if out else Path(checkpoint) / "eval" / f"{split}.json"
    if path.suffix.lower() != ".json":
        raise UserError(f"--out must name a .json file (the Markdown and photos go next to it), got {path}")
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; give a file name such as {path / (split + '.json')}")
    writable_file(path, "the eval result (--out)", create=False)  # now, not after every reply was generated
    return EvalPaths(path)


def photo_file(folder: Path, index: int) -> Path:
    return folder / f"{index:05d}.png"


def fresh_folder(folder: Path) -> Path:
    """``folder``, created, without the PNGs of an earlier run."""
    folder.mkdir(parents=True, exist_ok=True)
    # A rerun with fewer targets must not leave stale photos that a folder-based scorer would count.
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def save_photos(folder: Path, photos: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Path, Any]]:
    """Save ``(target index, PIL image)`` pairs as PNGs in a fresh ``folder``, as they come.

    Yields ``(index, path, image)`` for each saved photo; lazy, so nothing is saved until iterated.
    """
    fresh_folder(folder)
    for index, photo in photos:
        path = photo_file(folder, index)
        photo.save(path)
        yield index, path, photo


def write_predictions(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))

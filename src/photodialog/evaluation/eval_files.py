"""What ``photodialog eval`` is asked (``EvalRequest``: the checkpoint, the data, the seeds, the
settings), and where it writes, and what: the result JSON, its Markdown, the photos, the predictions.

For ``--out DIR/test.json`` (default: ``<checkpoint>/eval/<split>.json``)::

    DIR/test.json                    the eval result (schema photodialog.eval/1)
    DIR/test.md                      Table 2, share moment, probe scores, per-seed tables, settings
    DIR/test-predictions.jsonl       one line per target turn: index, dialogue_id, turn_index, speaker,
                                     gold, predicted, captions, photos_by_seed (+ predicted_by_seed
                                     when sampling gives each seed its own reply)
    DIR/test-photos/seed-0/00042.png the photo drawn for target 42 with seed 0 (IS/FID's generated set)
    DIR/test-photos/seed-0-gold-captions/00042.png   drawn from target 42's gold caption (probe check)

Photos are named by the target's index, which the predictions file maps to the dialogue and turn.

The result JSON is written last, and only once every other file is in place: a result that
exists is complete, and a kill at any moment leaves either the earlier result with its own
photos or no result (``EvalPaths.finished`` says which). While an eval runs, its new photos are
drawn in ``DIR/.test.eval-partial/`` (whose presence also marks the files as this eval's); the
earlier set is replaced as one unit at the end. The Markdown, predictions and photos are derived
names the user did not give: when they exist but no eval of this ``--out`` wrote them, the eval
is refused before any work (``eval_paths``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photodialog import json_limits
from photodialog.errors import UserError
from photodialog.evaluation.image_metrics import INCEPTION
from photodialog.files import write_text
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

    @property
    def partial(self) -> Path:
        """The folder of an eval that has not finished: its new photos (``photos/``), and the earlier
        photos while they are swapped out (``old-photos/``). Removed once the result is written."""
        return self.folder / f".{self.json.stem}.eval-partial"

    def drawn_photos(self, seed: int, *, gold_captions: bool = False) -> Path:
        """Where this eval draws the seed's photos: under ``partial`` until the result is written."""
        return self.partial / "photos" / self.seed_photos(seed, gold_captions=gold_captions).name

    def relative(self, path: Path) -> str:
        """``path`` relative to the result's folder (how the predictions file names photos); a photo
        still under ``partial`` is named where it will be once the result is written."""
        staged = self.partial / "photos"
        if path.is_relative_to(staged):
            path = self.photos / path.relative_to(staged)
        return path.relative_to(self.folder).as_posix()

    @property
    def derived(self) -> tuple[Path, ...]:
        """The files an eval writes beside its result JSON."""
        return self.markdown, self.predictions, self.photos

    def finished(self) -> bool:
        """Whether a complete result is here: the JSON (written last) and the files beside it, with no
        eval of it left half-done."""
        return (self.json.is_file() and self.markdown.is_file() and self.predictions.is_file()
                and not self.partial.exists())

    def foreign_files(self) -> list[Path]:
        """Existing files an eval here would replace that no eval of this result wrote (the user's)."""
        if self.partial.is_dir():  # an eval of this result was interrupted: what is here is its own
            return []
        if self.json.exists():
            return [] if is_eval_result(self.json) else [self.json]
        return [path for path in self.derived if path.exists()]


def eval_paths(out: str | os.PathLike | None, checkpoint: str | os.PathLike, split: str) -> EvalPaths:
    """The paths for ``--out`` (a ``.json`` file), by default ``<checkpoint>/eval/<split>.json``."""
    path = Path(out) if out else Path(checkpoint) / "eval" / f"{split}.json"
    if path.suffix.lower() != ".json":
        raise UserError(f"--out must name a .json file (the Markdown and photos go next to it), got {path}")
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; give a file name such as {path / (split + '.json')}")
    writable_file(path, "the eval result (--out)", create=False)  # now, not after every reply was generated
    paths = EvalPaths(path)
    foreign = paths.foreign_files()
    if foreign:
        names = ", ".join(str(p) for p in foreign)
        raise UserError(f"{names} {'exists' if len(foreign) == 1 else 'exist'} and no eval of {path} wrote "
                        f"{'it' if len(foreign) == 1 else 'them'}: eval writes {path.name}, {paths.markdown.name}, "
                        f"{paths.predictions.name} and {paths.photos.name}/ there and would replace them; move "
                        f"{'it' if len(foreign) == 1 else 'them'} or give --out another name")
    return paths


def is_eval_result(path: Path) -> bool:
    """Whether ``path`` is a JSON eval result (its ``schema`` says so); False for anything unreadable."""
    if json_limits.file_too_large(path, json_limits.MAX_RESULT_BYTES):
        return False
    try:
        value = json_limits.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, json_limits.TooDeep):
        return False
    return isinstance(value, dict) and str(value.get("schema", "")).startswith("photodialog.eval/")


def start_writing(paths: EvalPaths) -> None:
    """A fresh ``partial`` folder (a killed eval's leftovers removed), before the first photo is drawn."""
    shutil.rmtree(paths.partial, ignore_errors=True)
    (paths.partial / "photos").mkdir(parents=True)


def finish_writing(paths: EvalPaths, rows: Sequence[Mapping[str, Any]], markdown: str,
                   write_result: Callable[[Path], None]) -> None:
    """Put a finished eval in place: the earlier result given up first, the new photos swapped in as
    one folder, the predictions and Markdown, and ``write_result(paths.json)`` last."""
    paths.json.unlink(missing_ok=True)  # from here the earlier result no longer claims these photos
    staged, old = paths.partial / "photos", paths.partial / "old-photos"
    shutil.rmtree(old, ignore_errors=True)
    if paths.photos.exists():
        os.replace(paths.photos, old)
    if any(staged.iterdir()):
        os.replace(staged, paths.photos)
    write_predictions(paths.predictions, rows)
    write_text(paths.markdown, markdown)
    write_result(paths.json)
    shutil.rmtree(paths.partial, ignore_errors=True)


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


# ---- What ``photodialog eval`` is asked to do: the checkpoint, the data, the seeds, the settings ----

@dataclass
class EvalRequest:
    """What to evaluate and how; ``None`` fields fall back to the checkpoint's ``eval`` config."""

    checkpoint: str
    data: str | None = None
    """Dataset folder; default: the checkpoint's ``data.path``."""
    split: str = "test"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    out: str | None = None
    """Result JSON; default ``<checkpoint>/eval/<split>.json``."""
    max_samples: int = 0
    """Only the first N target turns (0 = all, the protocol)."""
    inception_weights: str | None = None
    device: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    """``GenerationSettings`` fields to override (``decoding``, ``num_beams``, ``diffusion_steps``...)."""
    batch_size: int | None = None
    name: str | None = None
    """Model name in tables; default ``end-to-end``, ``pipeline`` or ``Divter``."""
    isc_splits: int = 10
    feature_extractor: str = INCEPTION
    """torch-fidelity extractor for IS/FID; the default is the paper's Inception."""
    progress: bool = True

"""A synthetic world's metadata (``world.json``) and its labelled photos, read back from disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from photodialog.data.layout import SPLITS, WORLD_FILE, find_photo, photo_stem
from photodialog.data.synth.attributes import Triple, parse_caption
from photodialog.errors import DataError

GENERATOR = "photodialog.data.synth"
# 2: every shared photo announced in full before its turn, two in five dialogues open with the
# photo (data/synth/dialogues.py); photos and captions are those of version 1.
GENERATOR_VERSION = 2
# World option ``omit_colour`` (``data synth --omit-colour``): the fraction of captions without the
# colour, in world.json; each record then keeps the photo's whole content under ATTRIBUTES_KEY.
OMIT_COLOUR_KEY = "caption_colour_omitted"
ATTRIBUTES_KEY = "photo_attributes"


@dataclass
class LabelledPhoto:
    """One photo of a world with what it shows."""

    path: Path
    triple: Triple
    split: str
    photo_id: str
    held_out: bool


@dataclass
class World:
    """What ``world.json`` says about a synthetic world: its attributes and how it was made."""

    root: Path
    seed: int
    image_size: int
    objects: tuple[str, ...]
    colours: dict[str, tuple[int, int, int]]
    scenes: tuple[str, ...]
    scene_phrases: dict[str, str]
    held_out: frozenset[Triple]
    counts: dict[str, int] = field(default_factory=dict)
    version: int = GENERATOR_VERSION
    omit_colour: float = 0.0
    """The fraction of gold captions that leave the colour out (``data synth --omit-colour``)."""

    def photos(self, split: str) -> list[LabelledPhoto]:
        """Every photo of ``split`` with its triple, in file order (read from the split's JSON)."""
        found = []
        for record, source in _records(self.root, split):
            parsed = record_attributes(record)
            stem = photo_stem(record.get("photo_id"), record.get("photo_url"))
            path = find_photo(self.root, stem)
            if parsed is None or path is None:
                raise DataError(f"{source}: dialogue {record.get('dialogue_id')} has no readable "
                                f"caption or photo file; regenerate the world with "
                                f"`photodialog data synth --out {self.root} --force`")
            triple = Triple(**parsed)
            found.append(LabelledPhoto(path, triple, split, str(record.get("photo_id")),
                                       triple in self.held_out))
        return found


def record_attributes(record: dict) -> dict[str, str] | None:
    """What a world record's photo shows: its ``photo_attributes`` (a world whose captions leave
    something out), else its caption read back (``parse_caption``); None when neither says."""
    kept = record.get(ATTRIBUTES_KEY)
    if isinstance(kept, dict) and all(isinstance(kept.get(k), str) for k in ("object", "colour", "scene")):
        return {k: kept[k] for k in ("object", "colour", "scene")}
    return parse_caption(str(record.get("photo_description", "")))


def photo_attributes(root: str | Path) -> dict[str, dict[str, str]]:
    """{photo_id: its object, colour and scene} of every photo of the world at ``root``: the truth the
    evaluation scores a photo against, whatever its caption leaves out. Empty for a folder that is
    not a synthetic world."""
    root = Path(root)
    if not (root / WORLD_FILE).is_file():
        return {}
    found = {}
    for split in SPLITS:
        for record, _ in _records(root, split):
            attributes = record_attributes(record)
            if attributes is not None:
                found[str(record.get("photo_id"))] = attributes
    return found


def load_world(root: str | Path) -> World:
    """Read ``root/world.json``; raises ``DataError`` if ``root`` is not a synthetic world."""
    root = Path(root)
    path = root / WORLD_FILE
    if not path.is_file():
        raise DataError(f"{root} is not a synthetic world (no {WORLD_FILE}); "
                        f"make one with `photodialog data synth --out {root}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return World(
            root=root, seed=int(meta["seed"]), image_size=int(meta["image_size"]),
            objects=tuple(meta["objects"]),
            colours={name: tuple(rgb) for name, rgb in meta["colours"].items()},
            scenes=tuple(meta["scenes"]), scene_phrases=dict(meta["scene_phrases"]),
            held_out=frozenset(Triple(*t) for t in meta["held_out"]),
            counts=dict(meta.get("counts", {})), version=int(meta.get("version", 0)),
            omit_colour=float(meta.get(OMIT_COLOUR_KEY, 0.0)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid world description ({exc}); regenerate it with "
                        f"`photodialog data synth --out {root} --force`") from exc


def _records(root: Path, split: str):
    """(record, "file:index") for every dialogue of ``split``, files in name order."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    files = sorted((root / split).glob("*.json"), key=_file_order)
    for file in files:
        try:
            records = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DataError(f"{file} is not valid JSON ({exc})") from exc
        for index, record in enumerate(records):
            yield record, f"{file}:{index}"


def _file_order(path: Path) -> tuple:
    """data_2.json before data_10.json."""
    stem = path.stem
    number = stem.rsplit("_", 1)[-1]
    return (int(number) if number.isdigit() else -1, stem)

"""Writing a synthetic world to disk in PhotoChat's published format (docs/architecture.md, "The synthetic world").

Layout::

    DIR/train/data_0.json ...   JSON arrays of at most 500 dialogues (PhotoChat's files)
    DIR/dev/... DIR/test/...
    DIR/photos/<split>/<id>.png one RGB photo per dialogue
    DIR/world.json              attributes, held-out triples, seed, image size, counts

Everything is a pure function of (dialogues, seed, image size): JSON is written with sorted keys
and fixed indentation, PNGs with fixed settings and no timestamps, so two runs give identical
bytes. Train and dev use only the *seen* triples; about half of test uses the held-out ones.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photodialog.data.layout import PHOTO_DIR, SPLITS, WORLD_FILE
from photodialog.data.synth.attributes import (
    CAPTION_TEMPLATE, COLOURS, KINDS, OBJECTS, SCENE_PHRASES, SCENES, Triple, all_triples, caption_without_colour,
    choose_held_out,
)
from photodialog.data.synth.dialogues import compose_dialogue
from photodialog.data.synth.render import render_photo
from photodialog.data.synth.world import (
    ATTRIBUTES_KEY, GENERATOR, GENERATOR_VERSION, OMIT_COLOUR_KEY, World, load_world,
)
from photodialog.config import SEED_MAX
from photodialog.errors import UserError
from photodialog.output_files import claim_folder, folder_owner_problem

DIALOGUES_PER_FILE = 500  # as in PhotoChat's published files
# Every dialogue is planned and held in memory before the files are written (a few KB each):
# 200,000 is 16 times PhotoChat and about 1 GB; a typo of 14 digits must not fill the memory.
MIN_DIALOGUES, MAX_DIALOGUES = 10, 200_000
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024
SPLIT_FRACTIONS = {"train": 0.8, "dev": 0.1}  # test gets the rest
TEST_HELD_OUT_FRACTION = 0.5
# Everything a world owns inside its folder; only these are removed when a world is rewritten.
OWNED_PATHS = (*SPLITS, PHOTO_DIR, WORLD_FILE, "probe")
SYNTH = "data synth"  # the command named in a world folder's owner file


@dataclass(frozen=True)
class PlannedDialogue:
    """Where one dialogue goes and what its photo shows."""

    index: int  # global, also the dialogue_id
    split: str
    triple: Triple


def split_sizes(dialogues: int) -> dict[str, int]:
    """About 80/10/10 %, every split non-empty."""
    dev = max(1, round(dialogues * SPLIT_FRACTIONS["dev"]))
    test = max(1, round(dialogues * (1 - SPLIT_FRACTIONS["train"] - SPLIT_FRACTIONS["dev"])))
    return {"train": dialogues - dev - test, "dev": dev, "test": test}


def plan_world(dialogues: int, seed: int) -> tuple[list[PlannedDialogue], list[Triple]]:
    """Which triple each dialogue shows, and the held-out triples.

    Triples are dealt from shuffled decks (reshuffled when empty) rather than drawn independently,
    so every object, colour and scene appears about equally often even in a small world.
    """
    held_out = choose_held_out(seed)
    held_set = set(held_out)
    seen_deck = _Deck([t for t in all_triples() if t not in held_set], random.Random(f"{seed}:seen"))
    held_deck = _Deck(held_out, random.Random(f"{seed}:held-out"))
    plan, index = [], 0
    for split, size in split_sizes(dialogues).items():
        for position in range(size):
            use_held_out = split == "test" and position % 2 == 0 and TEST_HELD_OUT_FRACTION > 0
            deck = held_deck if use_held_out else seen_deck
            plan.append(PlannedDialogue(index, split, deck.draw()))
            index += 1
    return plan, held_out


class _Deck:
    def __init__(self, items: list[Triple], rng: random.Random):
        self.items, self.rng, self.pile = list(items), rng, []

    def draw(self) -> Triple:
        if not self.pile:
            self.pile = list(self.items)
            self.rng.shuffle(self.pile)
        return self.pile.pop()


def photo_id_for(item: PlannedDialogue) -> str:
    """The photo id of a planned dialogue: ``<split>/<index, 6 digits>``."""
    return f"{item.split}/{item.index:06d}"


def write_world(out_dir: str | Path, dialogues: int = 2000, seed: int = 0, image_size: int = 64,
                force: bool = False, progress: bool = True, omit_colour: float = 0.0) -> World:
    """Generate a world into ``out_dir`` and return its metadata (see the module docstring).

    ``omit_colour``: the fraction of gold captions (``photo_description``) that leave the colour out
    ("a car at night"), as PhotoChat's "Objects in the photo: ..." lists leave out what the photo
    shows; the dialogue still states the colour and the photo shows it. The photo's whole content
    is then kept beside the caption in each record (``photo_attributes``), for the probe and the
    evaluation. The choice per dialogue comes from a stream of its own: the dialogues and photos are
    those of the complete-caption world of the same seed.

    ``out_dir`` may be missing, empty, an earlier world (which is replaced) or a world whose
    writing was interrupted; any other non-empty folder is refused (``UserError``) unless
    ``force`` (then only the paths a world owns are replaced). ``world.json`` is written last:
    a folder without it is not a world.
    """
    _check_arguments(dialogues, seed, image_size, omit_colour)
    out = Path(out_dir)
    _prepare_folder(out, force)
    plan, held_out = plan_world(dialogues, seed)
    records: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for item in _progress(plan, progress):
        records[item.split].append(_make_dialogue(out, item, seed, image_size, omit_colour))
    files = {split: _write_split(out, split, records[split]) for split in SPLITS}
    meta = _world_meta(dialogues, seed, image_size, held_out, plan, files)
    if omit_colour:  # only then: the complete-caption world's bytes stay as they were
        meta[OMIT_COLOUR_KEY] = omit_colour
    _write_json(out / WORLD_FILE, meta)
    return load_world(out)


def ensure_world(out_dir: str | Path, dialogues: int = 2000, seed: int = 0, image_size: int = 64,
                 progress: bool = True, omit_colour: float = 0.0) -> World:
    """The world in ``out_dir`` if it was made with these settings, else a freshly written one."""
    out = Path(out_dir)
    if (out / WORLD_FILE).is_file():
        try:
            meta = json.loads((out / WORLD_FILE).read_text(encoding="utf-8"))
        except ValueError:
            meta = {}
        wanted = {"dialogues": dialogues, "seed": seed, "image_size": image_size,
                  "version": GENERATOR_VERSION}
        if all(meta.get(key) == value for key, value in wanted.items()) and meta.get(OMIT_COLOUR_KEY, 0.0) == omit_colour:
            return load_world(out)
    return write_world(out, dialogues, seed, image_size, progress=progress, omit_colour=omit_colour)


def _check_arguments(dialogues: int, seed: int, image_size: int, omit_colour: float = 0.0) -> None:
    if not 0.0 <= omit_colour <= 1.0:
        raise UserError(f"--omit-colour is a fraction of captions, from 0 to 1 (got {omit_colour})")
    if dialogues < MIN_DIALOGUES:
        raise UserError(f"--dialogues must be at least {MIN_DIALOGUES} (got {dialogues}), so that train, "
                        "dev and test each get some")
    if dialogues > MAX_DIALOGUES:
        raise UserError(f"--dialogues must be at most {MAX_DIALOGUES:,} (got {dialogues:,}): every dialogue is "
                        "held in memory until the files are written")
    if not 0 <= seed <= SEED_MAX:
        raise UserError(f"--seed must be a whole number from 0 to {SEED_MAX} (got {seed})")
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise UserError(f"--image-size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels (got {image_size})")


def _prepare_folder(out: Path, force: bool) -> None:
    """Make ``out`` this world's folder: a missing or empty one, an earlier world, or a world whose
    writing was killed (its owner file says ``data synth`` made it, so a rerun resumes without
    --force); anything else only with ``force``. Only the paths a world owns are removed."""
    problem = folder_owner_problem(out, SYNTH, made_before=_is_world)
    if problem and (not force or not out.is_dir()):
        raise UserError(problem + ("" if not out.is_dir() else "; or pass --force to write the world's files into it anyway"))
    for name in OWNED_PATHS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    claim_folder(out, SYNTH, made_before=lambda _: True)  # checked above (--force: the user's choice)


def _is_world(folder: Path) -> bool:
    return (folder / WORLD_FILE).is_file()


def _progress(plan: list[PlannedDialogue], enabled: bool):
    # progress bars only where they are shown; keeps light callers light
    from tqdm import tqdm

    return tqdm(plan, desc="synthesising dialogues", unit="dialogue", disable=not enabled)


def _make_dialogue(out: Path, item: PlannedDialogue, seed: int, image_size: int, omit_colour: float = 0.0) -> dict:
    """Compose the dialogue, render and save its photo, return its PhotoChat record."""
    photo_id = photo_id_for(item)
    photo_url = f"{PHOTO_DIR}/{photo_id}.png"
    photo = render_photo(item.triple, np.random.default_rng([seed, item.index]), image_size)
    path = out / photo_url
    path.parent.mkdir(parents=True, exist_ok=True)
    photo.save(path, format="PNG", compress_level=6)
    messages = compose_dialogue(item.triple, random.Random(f"{seed}:dialogue:{item.index}"))
    record = {
        "dialogue": [m.to_json() for m in messages],
        "dialogue_id": item.index,
        "photo_description": item.triple.caption,
        "photo_url": photo_url,
        "photo_id": photo_id,
    }
    if omit_colour:
        if random.Random(f"{seed}:caption:{item.index}").random() < omit_colour:
            record["photo_description"] = caption_without_colour(item.triple)
        record[ATTRIBUTES_KEY] = {kind: getattr(item.triple, kind) for kind in KINDS}
    return record


def _write_split(out: Path, split: str, records: list[dict]) -> list[str]:
    (out / split).mkdir(parents=True, exist_ok=True)
    names = []
    for k, start in enumerate(range(0, len(records), DIALOGUES_PER_FILE)):
        name = f"{split}/data_{k}.json"
        _write_json(out / name, records[start:start + DIALOGUES_PER_FILE])
        names.append(name)
    return names


def _write_json(path: Path, value) -> None:
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def _world_meta(dialogues, seed, image_size, held_out, plan, files) -> dict:
    counts = {split: sum(1 for p in plan if p.split == split) for split in SPLITS}
    held = set(held_out)
    counts["test_held_out"] = sum(1 for p in plan if p.split == "test" and p.triple in held)
    return {
        "generator": GENERATOR, "version": GENERATOR_VERSION,
        "dialogues": dialogues, "seed": seed, "image_size": image_size,
        "objects": list(OBJECTS), "colours": {k: list(v) for k, v in COLOURS.items()},
        "scenes": list(SCENES), "scene_phrases": dict(SCENE_PHRASES),
        "caption_template": CAPTION_TEMPLATE,
        "held_out": [[t.object, t.colour, t.scene] for t in held_out],
        "counts": counts, "files": files,
    }

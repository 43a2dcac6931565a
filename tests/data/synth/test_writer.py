"""Writing a world: PhotoChat's format, reproducibility, splits, held-out triples, photos."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photodialog.data.synth import Triple, load_world, parse_caption, write_world
from photodialog.data.synth import writer as W
from photodialog.errors import UserError

PHOTOCHAT_KEYS = {"dialogue", "dialogue_id", "photo_description", "photo_url", "photo_id"}
MESSAGE_KEYS = {"message", "share_photo", "user_id"}


def tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_byte_identical_files(small_world, tmp_path):
    again = tmp_path / "again"
    write_world(again, dialogues=60, seed=0, image_size=32, progress=False)
    assert tree_digest(small_world) == tree_digest(again)


def test_different_seeds_give_different_worlds(small_world, tmp_path):
    other = tmp_path / "other"
    write_world(other, dialogues=60, seed=1, image_size=32, progress=False)
    a, b = tree_digest(small_world), tree_digest(other)
    assert a.keys() == b.keys()
    assert a["train/data_0.json"] != b["train/data_0.json"]
    photos = [k for k in a if k.startswith("photos/")]
    assert sum(a[k] != b[k] for k in photos) == len(photos)


def test_records_have_photochat_keys_and_types(small_world, read_split):
    ids = set()
    for split in ("train", "dev", "test"):
        for record in read_split(small_world, split):
            assert set(record) == PHOTOCHAT_KEYS
            assert isinstance(record["dialogue_id"], int)
            assert isinstance(record["photo_description"], str)
            assert record["photo_id"].startswith(f"{split}/")
            assert record["photo_url"] == f"photos/{record['photo_id']}.png"
            for message in record["dialogue"]:
                assert set(message) == MESSAGE_KEYS
                assert isinstance(message["message"], str)
                assert isinstance(message["share_photo"], bool)
                assert message["user_id"] in (0, 1)
            shared = [m for m in record["dialogue"] if m["share_photo"]]
            assert len(shared) == 1 and shared[0]["message"] == ""
            ids.add(record["dialogue_id"])
    assert len(ids) == 60


def test_files_hold_at_most_500_dialogues(tmp_path, monkeypatch):
    assert W.DIALOGUES_PER_FILE == 500  # PhotoChat's published files; made small below to test it
    monkeypatch.setattr(W, "DIALOGUES_PER_FILE", 7)
    world = write_world(tmp_path / "w", dialogues=40, seed=0, image_size=16, progress=False)
    files = sorted((world.root / "train").glob("*.json"))
    sizes = [len(json.loads(f.read_text())) for f in files]
    assert len(files) == 5 and max(sizes) == 7 and sum(sizes) == world.counts["train"]


def test_splits_are_about_80_10_10():
    for total in (10, 60, 2000, 10286):
        sizes = W.split_sizes(total)
        assert sum(sizes.values()) == total and min(sizes.values()) >= 1
        assert abs(sizes["train"] / total - 0.8) < 0.05 and abs(sizes["test"] / total - 0.1) < 0.05


def test_held_out_triples_only_in_test_and_half_of_it(small_world, read_split):
    world = load_world(small_world)
    for split in ("train", "dev"):
        for record in read_split(small_world, split):
            assert Triple(**parse_caption(record["photo_description"])) not in world.held_out
    test = [Triple(**parse_caption(r["photo_description"])) for r in read_split(small_world, "test")]
    held = sum(t in world.held_out for t in test)
    assert held == world.counts["test_held_out"] and abs(held - len(test) / 2) <= 1


def test_every_photo_exists_and_shows_its_caption(small_world, read_split):
    from photodialog.data.synth.attributes import COLOURS

    for split in ("train", "dev", "test"):
        for record in read_split(small_world, split):
            path = small_world / record["photo_url"]
            with Image.open(path) as image:
                assert image.mode == "RGB" and image.size == (32, 32)
                pixels = np.asarray(image, dtype=np.float32)
            near = {c: (np.linalg.norm(pixels - np.array(rgb), axis=-1) < 60).sum()
                    for c, rgb in COLOURS.items()}
            assert max(near, key=near.get) == parse_caption(record["photo_description"])["colour"]


def test_world_json_describes_the_world(small_world):
    world = load_world(small_world)
    meta = json.loads((small_world / "world.json").read_text())
    assert meta["seed"] == 0 and meta["image_size"] == 32 and meta["dialogues"] == 60
    assert meta["generator"] == "photodialog.data.synth" and meta["version"] >= 1
    assert world.counts["train"] + world.counts["dev"] + world.counts["test"] == 60
    assert len(world.objects) == 8 and len(world.colours) == 6 and len(world.scenes) == 5


def test_a_balanced_deck_covers_every_attribute_in_train():
    plan, _ = W.plan_world(200, seed=4)
    train = [p.triple for p in plan if p.split == "train"]
    for kind in ("object", "colour", "scene"):
        counts = {}
        for t in train:
            counts[getattr(t, kind)] = counts.get(getattr(t, kind), 0) + 1
        assert max(counts.values()) <= 2 * min(counts.values()), (kind, counts)


def test_refuses_a_non_empty_folder_that_is_not_a_world(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="--force"):
        write_world(tmp_path, dialogues=10, image_size=16, progress=False)
    write_world(tmp_path, dialogues=10, image_size=16, force=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "world.json").is_file()


def test_rewriting_a_world_leaves_no_stale_files(tmp_path):
    write_world(tmp_path, dialogues=30, image_size=16, progress=False)
    (tmp_path / "probe").mkdir()
    write_world(tmp_path, dialogues=10, image_size=16, progress=False)
    photos = list((tmp_path / "photos").rglob("*.png"))
    assert len(photos) == 10 and not (tmp_path / "probe").exists()


@pytest.mark.parametrize("kwargs", [{"dialogues": 5}, {"image_size": 8}])
def test_bad_arguments_are_user_errors(tmp_path, kwargs):
    with pytest.raises(UserError):
        write_world(tmp_path / "w", **{"image_size": 16, **kwargs}, progress=False)


def test_ensure_world_reuses_a_matching_world_and_rewrites_otherwise(tmp_path):
    write_world(tmp_path, dialogues=10, seed=2, image_size=16, progress=False)
    stamp = (tmp_path / "world.json").stat().st_mtime_ns
    W.ensure_world(tmp_path, dialogues=10, seed=2, image_size=16, progress=False)
    assert (tmp_path / "world.json").stat().st_mtime_ns == stamp
    world = W.ensure_world(tmp_path, dialogues=12, seed=2, image_size=16, progress=False)
    assert sum(world.counts[s] for s in ("train", "dev", "test")) == 12


def test_the_photochat_loader_reads_a_world(small_world):
    """The project's generic loader sees one photo turn per dialogue, with its local file."""
    from photodialog.data.loading import load_dialogues

    dialogues = load_dialogues(small_world, "test")
    assert len(dialogues) == load_world(small_world).counts["test"]
    for dialogue in dialogues:
        photos = [p for turn in dialogue.turns for p in turn.photos]
        assert len(photos) == 1 and parse_caption(photos[0].caption)
        assert photos[0].path and Path(photos[0].path).resolve().is_relative_to(small_world.resolve() / "photos")


def test_a_world_whose_captions_leave_the_colour_out_keeps_everything_else(small_world, tmp_path):
    """--omit-colour: the same dialogues and photos as the complete world of that seed; about the
    given fraction of captions lose their colour; what each photo shows is kept beside the caption,
    and the world's labels (the probe's, the evaluation's) come from it."""
    from photodialog.data.synth.attributes import caption_without_colour
    from photodialog.data.synth.world import photo_attributes

    complete_root = small_world
    complete = load_world(small_world)
    omitted = write_world(tmp_path / "w", dialogues=60, seed=complete.seed, image_size=complete.image_size, progress=False,
                          omit_colour=0.5)
    assert omitted.omit_colour == 0.5 and json.loads((omitted.root / "world.json").read_text())["caption_colour_omitted"] == 0.5
    dropped = kept = 0
    for split in ("train", "dev", "test"):
        full = json.loads((complete_root / split / "data_0.json").read_text())
        part = json.loads((omitted.root / split / "data_0.json").read_text())
        for a, b in zip(full, part):
            assert a["dialogue"] == b["dialogue"] and a["photo_id"] == b["photo_id"]
            triple = parse_caption(a["photo_description"])
            assert b["photo_attributes"] == triple
            if b["photo_description"] == a["photo_description"]:
                kept += 1
            else:
                dropped += 1
                assert b["photo_description"] == caption_without_colour(Triple(**triple))
                assert parse_caption(b["photo_description"]) is None  # a caption that no longer says it all
    assert 0.35 < dropped / (dropped + kept) < 0.65
    assert [p.triple for p in omitted.photos("test")] == [p.triple for p in complete.photos("test")]
    assert len(photo_attributes(omitted.root)) == dropped + kept and photo_attributes(tmp_path / "not-a-world") == {}
    for a, b in zip(sorted((omitted.root / "photos").rglob("*.png")), sorted((complete_root / "photos").rglob("*.png"))):
        assert a.read_bytes() == b.read_bytes()
    # a complete world is written without the new keys: its bytes are those of before
    assert "caption_colour_omitted" not in json.loads((complete_root / "world.json").read_text())
    with pytest.raises(UserError, match="--omit-colour"):
        write_world(tmp_path / "bad", dialogues=20, omit_colour=1.5, progress=False)


def test_ensure_world_rewrites_a_world_made_with_another_caption_fraction(tmp_path):
    first = W.ensure_world(tmp_path / "w", dialogues=20, progress=False)
    assert first.omit_colour == 0.0
    assert W.ensure_world(tmp_path / "w", dialogues=20, progress=False, omit_colour=0.5).omit_colour == 0.5

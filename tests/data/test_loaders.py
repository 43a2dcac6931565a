"""PhotoChat and DialogCC records in their published formats -> the schema's dialogues."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from photodialog.data.layout import photo_stem
from photodialog.data.loading import dataset_root, find_sources, load_dialogues, load_messages, merge_messages
from photodialog.data.load_report import LoadReport
from photodialog.data.schema import PHOTO_SPAN, Dialogue, Turn, captions_in, photo_turn_text
from photodialog.errors import DataError, MissingDependencyError, UserError

from .helpers import FIXTURES, copy_fixture, photochat_record, write_json, write_png

TEAPOT = "Objects in the photo: Teapot, Kettle"
DARWIN = "The photo has your brother Darwin. Objects in the photo: Man, Dog"


def by_id(dialogues: list[Dialogue]) -> dict[str, Dialogue]:
    return {d.dialogue_id: d for d in dialogues}


def assert_spans_match_photos(dialogue: Dialogue) -> None:
    for turn in dialogue.turns:
        assert captions_in(turn.text) == [photo.caption for photo in turn.photos]


# --- PhotoChat ---------------------------------------------------------------------------


def test_photochat_array_merges_one_speakers_messages_and_inlines_the_photo():
    dialogues = by_id(load_dialogues(FIXTURES / "photochat", "train"))
    first = dialogues["1"]
    assert [t.speaker for t in first.turns] == ["0", "1", "0"]
    assert first.turns[0].text == f"Got my wife this teapot. {photo_turn_text(TEAPOT)}"
    assert first.turns[1].text == "I love it Where did you get it?"
    assert first.turns[1].photos == []
    assert [p.photo_id for p in first.turns[0].photos] == ["train/624e5f6dd7f64d89"]
    assert first.split == "train"
    for dialogue in dialogues.values():
        assert_spans_match_photos(dialogue)


def test_photochat_keeps_the_full_description_and_accepts_a_missing_photo_id():
    darwin = by_id(load_dialogues(FIXTURES / "photochat", "train"))["2"]
    photo = darwin.turns[1].photos[0]
    assert photo.caption == DARWIN  # the personal sentence stays: it is part of the target
    assert photo.photo_id is None
    assert photo.url.startswith("https://c1.staticflickr.com/")
    assert darwin.turns[1].text == f"Hello Look at this {photo_turn_text(DARWIN)}"


def test_photochat_jsonl_and_source_names_file_and_record():
    dev = load_dialogues(FIXTURES / "photochat", "dev")
    assert [d.dialogue_id for d in dev] == ["10", "11"]
    assert all(d.split == "dev" for d in dev)
    path, index = dev[1].source.rsplit(":", 1)
    assert path.endswith("photochat_dev.jsonl") and index == "1"
    # The photo message sits between two messages of speaker 1: it is a turn of its own.
    assert [t.speaker for t in dev[0].turns] == ["0", "1", "0", "1"]
    assert dev[0].turns[2].text == photo_turn_text("Objects in the photo: Bicycle")


def test_all_splits_when_split_is_none_and_valid_means_dev():
    everything = load_dialogues(FIXTURES / "photochat")
    assert sorted({d.split for d in everything}) == ["dev", "train"]
    assert len(everything) == 5
    assert [d.dialogue_id for d in load_dialogues(FIXTURES / "photochat", "valid")] == ["10", "11"]


def test_a_single_file_path_is_accepted():
    path = FIXTURES / "photochat" / "train" / "photochat_train_0.json"
    dialogues = load_dialogues(path)
    assert len(dialogues) == 3 and {d.split for d in dialogues} == {"train"}
    assert dataset_root(path) == FIXTURES / "photochat"


def test_photos_resolve_by_photo_id_then_by_url_hash(tmp_path):
    root = copy_fixture("photochat", tmp_path)
    teapot = write_png(root / "photos" / "train" / "624e5f6dd7f64d89.jpg")
    darwin_url = "https://c1.staticflickr.com/1/22/101010101_abcdef0123_o.jpg"
    darwin = write_png(root / "photos" / f"{photo_stem(None, darwin_url)}.png")
    dialogues = by_id(load_dialogues(root, "train"))
    assert dialogues["1"].turns[0].photos[0].path == str(teapot.absolute())
    assert dialogues["3"].turns[1].photos[0].path == str(teapot.absolute())
    assert dialogues["2"].turns[1].photos[0].path == str(darwin.absolute())
    assert Path(dialogues["2"].turns[1].photos[0].path).is_absolute()
    # No photos/ file for dev: the photo stays, known by caption and URL only.
    assert all(p.path is None for d in load_dialogues(root, "dev") for t in d.turns for p in t.photos)


def test_synthetic_world_layout_resolves_by_photo_id(tmp_path):
    records = [
        photochat_record(i, [(0, "look at my red cup"), (0, None), (1, "what a red cup")],
                         photo_id=f"train/{i:06d}", photo_url=f"photos/train/{i:06d}.png")
        for i in range(3)
    ]
    write_json(tmp_path / "train" / "data_0.json", records)
    (tmp_path / "world.json").write_text("{}", encoding="utf-8")  # not a dialogue file
    files = [write_png(tmp_path / "photos" / "train" / f"{i:06d}.png", seed=i) for i in range(3)]
    dialogues = load_dialogues(tmp_path, "train", check_photos=True)
    assert [d.turns[0].photos[0].path for d in dialogues] == [str(f.absolute()) for f in files]


def test_a_photo_id_with_nothing_usable_falls_back_to_the_url(tmp_path):
    # ".." names no file (it would climb out of photos/): the photo is looked for by its URL,
    # where `data download` stores it, instead of the loader failing on it.
    records = [photochat_record(0, [(0, "my cat"), (0, None)], photo_id="..", photo_url="https://example.org/c.jpg")]
    write_json(tmp_path / "train" / "data_0.json", records)
    photo = write_png(tmp_path / "photos" / f"{photo_stem(None, 'https://example.org/c.jpg')}.png")
    dialogues = load_dialogues(tmp_path, "train")
    assert dialogues[0].turns[0].photos[0].path == str(photo.absolute())
    assert photo_stem("..", "https://example.org/c.jpg") == photo_stem(None, "https://example.org/c.jpg")


# --- DialogCC ----------------------------------------------------------------------------


def test_dialogcc_several_photos_in_one_turn_with_per_image_and_utterance_captions():
    dialogues = by_id(load_dialogues(FIXTURES / "dialogcc", "train"))
    hike = dialogues["bst_1"]
    assert [t.speaker for t in hike.turns] == ["A", "B", "A", "B"]
    photos = hike.turns[2].photos
    assert [p.caption for p in photos] == ["mountain view at sunset", "a mountain landscape"]
    assert [p.url for p in photos] == ["http://cc3m.example/a.jpg", "http://cc3m.example/b.jpg"]
    assert hike.turns[2].text == (
        "Here's the view from the top. "
        + photo_turn_text("mountain view at sunset") + " " + photo_turn_text("a mountain landscape")
    )
    assert hike.turns[3].text == "Wow, beautiful. I want to go too."
    assert len(PHOTO_SPAN.findall(hike.turns[2].text)) == 2
    for dialogue in dialogues.values():
        assert_spans_match_photos(dialogue)


def test_dialogcc_valid_file_is_the_dev_split():
    dev = load_dialogues(FIXTURES / "dialogcc", "dev")
    assert [d.dialogue_id for d in dev] == ["wow_3"] and dev[0].split == "dev"
    assert dev[0].turns[1].photos[0].caption == "a red bicycle"  # the image's own description wins


def test_single_file_with_a_split_field_is_filtered_by_split(tmp_path):
    records = json.loads((FIXTURES / "dialogcc" / "train.json").read_text())
    records[1]["split"] = "test"
    valid = json.loads((FIXTURES / "dialogcc" / "valid.jsonl").read_text())
    path = write_json(tmp_path / "dialogcc_all.json", [*records, valid])
    assert [d.dialogue_id for d in load_dialogues(path, "test")] == ["daily_7"]
    assert [d.dialogue_id for d in load_dialogues(path, "dev")] == ["wow_3"]
    assert {d.split for d in load_dialogues(tmp_path)} == {"train", "test", "dev"}


def test_dialogcc_photos_resolve_by_url(tmp_path):
    root = copy_fixture("dialogcc", tmp_path)
    photo = write_png(root / "photos" / f"{photo_stem(None, 'http://cc3m.example/a.jpg')}.jpg")
    dialogues = by_id(load_dialogues(root, "train"))
    assert dialogues["bst_1"].turns[2].photos[0].path == str(photo.absolute())
    assert dialogues["bst_1"].turns[2].photos[1].path is None
    assert dialogues["daily_7"].turns[1].photos[0].path == str(photo.absolute())


# --- merging and message level ------------------------------------------------------------


def test_load_messages_keeps_every_published_message():
    messages = by_id(load_messages(FIXTURES / "photochat", "train"))
    assert len(messages["1"].turns) == 5
    assert messages["1"].turns[1].text == "" and messages["1"].turns[1].photos


def test_merge_messages_joins_with_single_spaces_and_skips_empty_messages():
    dialogue = Dialogue("d", [Turn("a", "  hi "), Turn("a", ""), Turn("b", "yo"), Turn("b", " there")])
    merged = merge_messages(dialogue)
    assert [(t.speaker, t.text) for t in merged.turns] == [("a", "hi"), ("b", "yo there")]


def test_typed_markers_cannot_break_the_photo_span_pairing(tmp_path):
    record = photochat_record(5, [(0, "I typed [IMG] here"), (0, None), (1, "ok [/IMG]")])
    dialogue = load_dialogues(write_json(tmp_path / "train" / "x.json", [record]))[0]
    for turn in dialogue.turns:
        assert len(PHOTO_SPAN.findall(turn.text)) == len(turn.photos)


# --- finding files -----------------------------------------------------------------------


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        load_dialogues(tmp_path / "nope", "train")


def test_missing_split_says_which_splits_exist():
    with pytest.raises(DataError, match=r"split 'test'.*found: dev, train"):
        load_dialogues(FIXTURES / "photochat", "test")


def test_split_folder_given_directly(tmp_path):
    root = copy_fixture("photochat", tmp_path)
    assert [s.split for s in find_sources(root / "dev")] == ["dev"]
    assert dataset_root(root / "dev") == root


def test_saved_datasets_folder_needs_the_datasets_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # absent, whatever this machine has
    (tmp_path / "dataset_dict.json").write_text('{"splits": ["train", "valid", "test"]}')
    with pytest.raises(MissingDependencyError, match="pip install"):
        load_dialogues(tmp_path, "dev")


def test_a_caller_report_counts_what_was_loaded():
    report = LoadReport()
    load_dialogues(FIXTURES / "dialogcc", report=report)
    assert report.ok and report.dialogues_loaded == 3 and report.files_read == 2
    assert report.formats == {"DialogCC": 3}

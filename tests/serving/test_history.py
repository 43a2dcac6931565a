"""`chat --history FILE`: PhotoChat records and JSONL turns become history; bad files say what is wrong."""

from __future__ import annotations

import json
import re

import pytest

from photodialog.data.schema import Photo, Turn
from photodialog.errors import UserError
from photodialog.serving.history import read_history


def _jsonl(path, *rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_jsonl_turns_with_a_relative_photo(tmp_path, world_photo):
    (tmp_path / "cat.png").write_bytes(world_photo.read_bytes())
    path = _jsonl(tmp_path / "h.jsonl",
                  {"speaker": "user", "text": "look", "photos": ["cat.png"]},
                  {"speaker": "bot", "text": "a cat!"},
                  {"speaker": 0, "text": "yes"}, {"speaker": "0", "text": "mine", "photos": [{"path": "cat.png", "caption": "my cat"}]})
    assert read_history(path) == [
        Turn("0", "look [IMG] a photo [/IMG]", [Photo("a photo", path=str(tmp_path / "cat.png"))]),
        Turn("1", "a cat!"),
        Turn("0", "yes mine [IMG] my cat [/IMG]", [Photo("my cat", path=str(tmp_path / "cat.png"))]),
    ]


def test_a_json_array_of_turns(tmp_path):
    path = tmp_path / "turns.json"
    path.write_text(json.dumps([{"speaker": "user", "text": "hi"}, {"speaker": "bot", "text": "hello"}, {"speaker": "bot", "text": "!"}]))
    assert read_history(path) == [Turn("0", "hi"), Turn("1", "hello !")]


def test_jsonl_spans_in_the_text_caption_their_photos(tmp_path, world_photo):
    path = _jsonl(tmp_path / "h.jsonl", {"speaker": "user", "text": "see [IMG] a red car [/IMG] ok", "photos": [str(world_photo)]})
    (turn,) = read_history(path)
    assert turn.text == "see [IMG] a red car [/IMG] ok" and turn.photos == [Photo("a red car", path=str(world_photo))]


def test_a_photochat_record_from_a_dataset(tmp_path):
    record = {"dialogue": [{"message": "Got my wife this teapot.", "share_photo": False, "user_id": 0},
                           {"message": "", "share_photo": True, "user_id": 0},
                           {"message": "I love it", "share_photo": False, "user_id": 1}],
              "dialogue_id": 1, "photo_description": "Objects in the photo: Teapot",
              "photo_url": "https://example.invalid/t.jpg", "photo_id": "train/abc"}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(record))
    turns = read_history(path)
    assert [t.text for t in turns] == ["Got my wife this teapot. [IMG] Objects in the photo: Teapot [/IMG]", "I love it"]
    photo = turns[0].photos[0]
    assert photo.path is None and photo.url == "https://example.invalid/t.jpg"  # not fetched: read as its caption


@pytest.mark.parametrize("content, complaint", [
    ('{"speaker": "user", "text": "hi"}\nnot json\n', ":2: not JSON"),
    ('{"speaker": "alice", "text": "hi"}\n', "unknown speaker"),
    ('{"speaker": "user", "text": "a [IMG] x [/IMG] [IMG] y [/IMG]", "photos": []}\n', "2 [IMG] spans but 0 photos"),
    ('{"speaker": "user", "text": ""}\n', "empty turn"),
    ('{"speaker": "user", "photos": [3]}\n', "each photo"),
    ('{"text": "hi"}\n', "speaker"),
    ("\n\n", "no turns"),
    ('[{"dialogue": [], "dialogue_id": 1}, {"dialogue": [], "dialogue_id": 2}]', "holds 2 dialogues"),
    ('{"dialogue": [{"message": "hi", "user_id": 0}], "dialogue_id": 1}', "share_photo"),
    ('{"dialogue": [{"message": "", "share_photo": true, "user_id": 0}], "dialogue_id": 1, "photo_url": "gone.png", "photo_description": "x"}', "photo file not found"),
    ('{"something": "else"}', "not a dialogue"),
])
def test_bad_history_files_say_what_is_wrong(tmp_path, content, complaint):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(complaint)):
        read_history(path)


def test_a_corrupt_photo_in_history_is_named(tmp_path, not_an_image):
    path = _jsonl(tmp_path / "h.jsonl", {"speaker": "user", "text": "look", "photos": [str(not_an_image)]})
    with pytest.raises(UserError, match="notes.png"):
        read_history(path)


def test_a_missing_history_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_history(tmp_path / "none.json")

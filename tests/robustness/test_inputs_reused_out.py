"""Kind 4 of issue 18: a reused ``--out`` never overwrites earlier photos or dialogues.

The issue's input: continuing a saved chat with ``--history F --out SAME``. Turn 2's upload
used to be written over turn 1's ``user-001.png``, and the saved dialogue then pointed both
turns at one file. Now every photo gets the lowest number no file has, created exclusively,
and the default dialogue file is a new one; a file named explicitly (``--save F``) is the
only one replaced, because the person asked for it.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from photodialog.cli.main import main
from photodialog.serving.history import read_history
from photodialog.serving.session import ChatSession

from .helpers import FAST_FLAGS, DrawingEngine, terminal_chat


def _photo(path, colour):
    Image.new("RGB", (12, 12), colour).save(path)
    return path


def _chat(checkpoint, out, *args):
    return main(["chat", "--checkpoint", str(checkpoint), "--out", str(out), *FAST_FLAGS, *args])


def test_continuing_a_saved_chat_with_the_same_out_keeps_turn_one_photo(tiny_run, tmp_path, capsys):
    """The issue's steps, with the real model."""
    out, saved = tmp_path / "out", tmp_path / "chat.json"
    red, blue = _photo(tmp_path / "red.png", (255, 0, 0)), _photo(tmp_path / "blue.png", (0, 0, 255))
    assert _chat(tiny_run, out, "--message", "turn one", "--photo", str(red), "--save", str(saved)) == 0
    first = (out / "photos" / "user-001.png").read_bytes()
    assert _chat(tiny_run, out, "--history", str(saved), "--message", "turn two", "--photo", str(blue),
                 "--save", str(saved)) == 0
    capsys.readouterr()
    assert (out / "photos" / "user-001.png").read_bytes() == first  # turn one's photo is untouched
    assert np.asarray(Image.open(out / "photos" / "user-002.png"))[0, 0].tolist() == [0, 0, 255]
    turns = read_history(saved)
    files = [photo.path for turn in turns for photo in turn.photos]
    assert files == [str((out / "photos" / "user-001.png").absolute()), str((out / "photos" / "user-002.png").absolute())]
    record = json.loads(saved.read_text())[0]
    urls = [m["photo_url"] for m in record["dialogue"] if m["share_photo"]]
    assert urls == ["out/photos/user-001.png", "out/photos/user-002.png"]  # relative to chat.json


def test_a_folder_with_earlier_files_keeps_them_all(tmp_path):
    out = tmp_path / "out"
    (out / "photos").mkdir(parents=True)
    earlier = {name: f"earlier {name}".encode() for name in ["user-001.png", "user-003.png", "bot-001.png"]}
    for name, data in earlier.items():
        (out / "photos" / name).write_bytes(data)
    (out / "dialogue.json").write_text("an earlier dialogue\n")
    session = ChatSession(out)
    code, _, _ = terminal_chat(session, ["one", "two", "three", "/save", "four", "/save"])
    assert code == 0
    for name, data in earlier.items():
        assert (out / "photos" / name).read_bytes() == data
    assert (out / "dialogue.json").read_text() == "an earlier dialogue\n"
    assert sorted(p.name for p in (out / "photos").glob("bot-*.png")) == ["bot-001.png", "bot-002.png", "bot-003.png",
                                                                          "bot-004.png", "bot-005.png"]
    # Both /save calls went to the one new file this session made, the second with all four turns.
    assert sorted(p.name for p in out.glob("dialogue*.json")) == ["dialogue-002.json", "dialogue.json"]
    messages = json.loads((out / "dialogue-002.json").read_text())[0]["dialogue"]
    assert [m["message"] for m in messages if m["user_id"] == 0] == ["one", "two", "three", "four"]


def test_user_photos_skip_numbers_that_are_taken(tmp_path):
    out = tmp_path / "out"
    (out / "photos").mkdir(parents=True)
    (out / "photos" / "user-001.png").write_bytes(b"theirs")
    session = ChatSession(out)
    first = session.save_photo(Image.new("RGB", (4, 4)), "0")
    (out / "photos" / "user-003.png").write_bytes(b"appeared meanwhile")  # another process, between two photos
    second = session.save_photo(Image.new("RGB", (4, 4)), "0")
    third = session.save_photo(Image.new("RGB", (4, 4)), "0")
    assert [first.photo_id, second.photo_id, third.photo_id] == ["user-002", "user-004", "user-005"]
    assert (out / "photos" / "user-003.png").read_bytes() == b"appeared meanwhile"


def test_two_sessions_on_one_folder_never_share_a_file(tmp_path):
    out = tmp_path / "out"
    a, b = ChatSession(out), ChatSession(out)
    names = [s.save_photo(Image.new("RGB", (4, 4)), "1").photo_id for s in (a, b, a, b)]
    assert names == ["bot-001", "bot-002", "bot-003", "bot-004"]
    assert a.save() != b.save()


def test_an_explicit_save_file_is_replaced_because_it_was_named(tmp_path):
    target = tmp_path / "mine.json"
    target.write_text("old\n")
    session = ChatSession(tmp_path / "out")
    terminal_chat(session, ["hello", f"/save {target}"], DrawingEngine())
    assert json.loads(target.read_text())[0]["dialogue"][0]["message"] == "hello"

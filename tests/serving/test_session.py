"""A conversation's history, its files under its own folder, and its PhotoChat export read back."""

from __future__ import annotations

import json

from PIL import Image

from photodialog.data.loading import load_dialogues
from photodialog.data.schema import Photo, Turn
from photodialog.models.generation import Reply
from photodialog.serving import BOT, USER
from photodialog.serving.chat_view import chat_messages
from photodialog.serving.history import read_history
from photodialog.serving.session import ChatSession


def _image(colour=(200, 30, 30)):
    return Image.new("RGB", (16, 12), colour)


def _drawn_reply():
    return Reply(text="nice! here is mine [IMG] a blue boat [/IMG] enjoy", captions=["a blue boat"], photos=[_image((0, 0, 200))])


def test_user_photos_are_saved_as_png_under_the_session_folder(tmp_path):
    session = ChatSession(tmp_path / "s")
    turn = session.add_user_message("look at this", [_image(), _image((0, 255, 0))])
    assert turn.speaker == USER
    assert turn.text == "look at this [IMG] a photo [/IMG] [IMG] a photo [/IMG]"
    paths = [photo.path for photo in turn.photos]
    assert [p.rsplit("/", 1)[1] for p in paths] == ["user-001.png", "user-002.png"]
    for path in paths:
        assert path.startswith(str((tmp_path / "s" / "photos").absolute()))
        assert Image.open(path).format == "PNG"
    assert Image.open(paths[1]).getpixel((0, 0)) == (0, 255, 0)


def test_reply_photos_are_saved_and_the_reply_becomes_a_turn(tmp_path):
    session = ChatSession(tmp_path)
    session.add_user_message("hi", [])
    paths = session.add_reply(_drawn_reply())
    assert [p.name for p in paths] == ["bot-001.png"] and paths[0].is_file()
    assert session.history[-1] == Turn(BOT, _drawn_reply().text, [Photo("a blue boat", path=str(paths[0]), photo_id="bot-001")])


def test_messages_in_a_row_join_one_turn_and_an_empty_reply_is_no_turn(tmp_path):
    session = ChatSession(tmp_path)
    session.add_user_message("hi", [])
    session.add_reply(Reply(text=""))
    session.add_user_message("anyone?", [_image()])
    assert len(session.history) == 1
    assert session.history[0].text == "hi anyone? [IMG] a photo [/IMG]" and len(session.history[0].photos) == 1


def test_reset_forgets_the_history_but_never_overwrites_photos(tmp_path):
    session = ChatSession(tmp_path)
    first = session.add_user_message("a", [_image()]).photos[0].path
    session.reset()
    assert session.history == []
    second = session.add_user_message("b", [_image((1, 2, 3))]).photos[0].path
    assert first != second and Image.open(first).getpixel((0, 0)) == (200, 30, 30)


def test_restore_undoes_a_message(tmp_path):
    session = ChatSession(tmp_path)
    session.add_user_message("a", [])
    before = session.snapshot()
    session.add_user_message("b", [])
    session.restore(before)
    assert [t.text for t in session.history] == ["a"]


def _chat(tmp_path) -> ChatSession:
    session = ChatSession(tmp_path / "chat")
    session.add_user_message("look at my cat", [_image()])
    session.add_reply(_drawn_reply())
    session.add_user_message("and my dog", [_image((9, 9, 9))])
    session.add_reply(Reply(text="cute"))
    return session


def test_save_writes_photochat_that_load_dialogues_reads_back(tmp_path):
    session = _chat(tmp_path)
    path = session.save()
    records = json.loads(path.read_text())
    assert isinstance(records, list) and len(records) == 1
    record = records[0]
    assert set(record) >= {"dialogue", "dialogue_id", "photo_description", "photo_url", "photo_id"}
    shares = [m for m in record["dialogue"] if m["share_photo"]]
    assert [m["user_id"] for m in shares] == [0, 1, 0] and all(m["message"] == "" for m in shares)
    assert [m["photo_description"] for m in shares] == ["a photo", "a blue boat", "a photo"]
    # Relative to the dialogue file's folder: a saved dialogue names no server path.
    assert [m["photo_url"] for m in shares] == ["photos/user-001.png", "photos/bot-001.png", "photos/user-002.png"]
    assert [str((path.parent / m["photo_url"]).absolute()) for m in shares] == [p.path for t in session.history for p in t.photos]

    (dialogue,) = load_dialogues(path)
    assert [t.speaker for t in dialogue.turns] == ["0", "1", "0", "1"]
    assert [t.text for t in dialogue.turns] == [t.text for t in session.history]
    # Each photo message carries its own fields, so every photo comes back with its caption and file.
    loaded = [(p.caption, p.path) for t in dialogue.turns for p in t.photos]
    assert loaded == [(p.caption, p.path) for t in session.history for p in t.photos]


def test_history_reads_every_photo_of_a_saved_chat(tmp_path):
    session = _chat(tmp_path)
    path = session.save(tmp_path / "elsewhere" / "saved.json")
    turns = read_history(path)
    assert turns == session.history


def test_a_chat_without_photos_saves_and_loads(tmp_path):
    session = ChatSession(tmp_path)
    session.add_user_message("hello", [])
    session.add_reply(Reply(text="hi there"))
    (dialogue,) = load_dialogues(session.save())
    assert [t.text for t in dialogue.turns] == ["hello", "hi there"]


def test_chat_view_puts_photos_where_they_were_shared(tmp_path):
    session = _chat(tmp_path)
    messages = chat_messages(session.history, pending="typing")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "assistant"]
    user_photo = session.history[0].photos[0].path
    assert messages[0]["content"] == ["look at my cat", {"path": user_photo, "alt_text": "a photo"}]
    bot_photo = session.history[1].photos[0].path
    assert messages[1]["content"] == ["nice! here is mine", {"path": bot_photo, "alt_text": "a blue boat"}, "*a blue boat*", "enjoy"]
    assert messages[-1]["content"] == "typing"
    caption_only = chat_messages([Turn(BOT, "see [IMG] a cat [/IMG]")])
    assert caption_only[0]["content"] == ["see", "[photo: a cat]"]

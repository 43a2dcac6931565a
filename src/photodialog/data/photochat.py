"""PhotoChat (Zang et al., ACL 2021): one published record -> one message-level dialogue.

The published files (``photochat/{train,dev,test}/*.json``) are JSON arrays of records::

    {"dialogue": [{"message": "Got my wife this teapot.", "share_photo": false, "user_id": 0},
                  {"message": "", "share_photo": true, "user_id": 0}, ...],
     "dialogue_id": 1,
     "photo_description": "Objects in the photo: Teapot, Kettle",
     "photo_url": "https://...jpg",
     "photo_id": "train/624e5f6dd7f64d89"}

JSONL files hold the same records, one per line. ``photo_id`` is missing in some published
versions (the photo is then known by its URL). Every message with ``share_photo`` shares the
dialogue's one photo.

The caption is ``photo_description`` in full, stripped of surrounding space. Descriptions may
begin with a personal sentence ("The photo has your brother Darwin.") before "Objects in the
photo: ..."; that sentence is kept, since it is what the sharer could say about the photo and
it is part of the published target text.

PhotoChat++ (Lee et al., 2023; Hub dataset ``passing2961/photochat_plus``, CC BY 4.0: one file
``photochat_plus.json`` of 968 PhotoChat dialogues, ids 0-999) keeps every PhotoChat field and adds
per-dialogue annotations (``intents``, ``trigger_sentences``, ``image_descriptions``,
``salient_information``, lists of strings); it is read as PhotoChat, the annotations unused.
"""

from __future__ import annotations

from typing import Any

from photodialog.data.load_report import (
    PHOTO_WITHOUT_CAPTION,
    RecordProblem,
    expect_mapping,
    optional_text,
    required,
)
from photodialog.data.schema import Dialogue, Photo, Turn

NAME = "PhotoChat"


def looks_like(record: Any) -> bool:
    """Whether ``record`` is shaped like a PhotoChat record (used to pick a file's parser)."""
    if not isinstance(record, dict):
        return False
    if "photo_description" in record or "photo_url" in record:
        return True
    messages = record.get("dialogue")
    return bool(messages) and isinstance(messages, list) and isinstance(messages[0], dict) and (
        "share_photo" in messages[0] or "message" in messages[0]
    )


def parse_record(record: Any) -> Dialogue:
    """One record as a *message-level* dialogue: one ``Turn`` per published message.

    A photo message keeps its own (usually empty) text in ``Turn.text`` and the photo in
    ``Turn.photos``; ``loading.merge_messages`` turns messages into the schema's turns.
    """
    record = expect_mapping(record, "the record")
    dialogue_id = str(required(record, "dialogue_id", (int, str)))
    messages = required(record, "dialogue", (list,))
    turns = [_parse_message(record, message, f"dialogue[{i}]") for i, message in enumerate(messages)]
    return Dialogue(dialogue_id=dialogue_id, turns=turns)


def _parse_message(record: dict, message: Any, where: str) -> Turn:
    message = expect_mapping(message, where)
    text = required(message, "message", (str,), where)
    shares_photo = required(message, "share_photo", (bool, int), where)
    speaker = required(message, "user_id", (int, str), where)
    # A message may carry its own photo fields (dialogues saved by `photodialog chat`, where
    # several photos are shared); the published files only have the record-level photo.
    photos = [_dialogue_photo(message if "photo_description" in message else record)] if shares_photo else []
    return Turn(speaker=str(speaker), text=text, photos=photos)


def _dialogue_photo(record: dict) -> Photo:
    """The photo described by ``record`` (a dialogue, or a message with its own photo fields);
    a fresh object per sharing message, since loaders fill in ``path``."""
    caption = required(record, "photo_description", (str,))
    if not caption.strip():
        raise RecordProblem(PHOTO_WITHOUT_CAPTION, "'photo_description' is empty but a message shares the photo")
    return Photo(
        caption=caption.strip(),
        url=optional_text(record, "photo_url"),
        photo_id=optional_text(record, "photo_id"),
    )

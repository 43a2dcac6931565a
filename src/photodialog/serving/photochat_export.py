"""A conversation written in PhotoChat's published format (DESIGN.md §2), readable by ``load_dialogues``.

Each turn becomes PhotoChat messages in order: its text pieces (``share_photo: false``) and one
message with an empty text and ``share_photo: true`` per photo. A PhotoChat record holds one
photo (``photo_description``, ``photo_url``, ``photo_id`` at the record's top level); a chat can
share several, so each photo message also carries its own three fields. The top-level fields
are the first photo's, so that any PhotoChat reader sees a valid record; photodialog's
``chat --history`` reads every photo from its message.

``photo_url`` is the photo's local file (absolute path), ``photo_id`` its name under the
session folder's ``photos/``: ``load_dialogues`` on a file saved in the session folder finds
the files by id, as it does for a downloaded dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

from photodialog.data.schema import PHOTO_SPAN, Photo, Turn
from photodialog.files import write_text


def dialogue_record(turns: list[Turn], dialogue_id: str) -> dict:
    """One PhotoChat record for ``turns``."""
    messages = [message for turn in turns for message in turn_messages(turn)]
    record: dict = {"dialogue": messages, "dialogue_id": dialogue_id}
    first_photo = next((m for m in messages if m["share_photo"]), None)
    if first_photo is not None:
        record.update({key: first_photo[key] for key in ("photo_description", "photo_url", "photo_id")})
    return record


def turn_messages(turn: Turn) -> list[dict]:
    """The PhotoChat messages of one turn: text pieces and photos, in the order they were said."""
    user_id = int(turn.speaker) if turn.speaker.isdigit() else turn.speaker
    messages: list[dict] = []
    photos = iter(turn.photos)
    position = 0

    def add_text(piece: str) -> None:
        if piece.strip():
            messages.append({"message": " ".join(piece.split()), "share_photo": False, "user_id": user_id})

    for span in PHOTO_SPAN.finditer(turn.text):
        add_text(turn.text[position:span.start()])
        photo = next(photos, None) or Photo(caption=span.group(1))
        messages.append({"message": "", "share_photo": True, "user_id": user_id, **photo_fields(photo)})
        position = span.end()
    add_text(turn.text[position:])
    return messages


def photo_fields(photo: Photo) -> dict:
    return {
        "photo_description": photo.caption,
        "photo_url": str(Path(photo.path).absolute()) if photo.path else (photo.url or ""),
        "photo_id": photo.photo_id or "",
    }


def write_dialogue(path: str | Path, turns: list[Turn], dialogue_id: str) -> Path:
    """Write ``turns`` as a PhotoChat file (a JSON array holding one record); returns the path."""
    path = Path(path)
    text = json.dumps([dialogue_record(turns, dialogue_id)], indent=2, ensure_ascii=False)
    write_text(path, text + "\n")  # atomic: a reader (or a crash) never leaves half a file
    return path

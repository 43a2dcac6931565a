"""A conversation written in PhotoChat's published format (docs/architecture.md, "The synthetic world"), readable by ``load_dialogues``.

Each turn becomes PhotoChat messages in order: its text pieces (``share_photo: false``) and one
message with an empty text and ``share_photo: true`` per photo. A PhotoChat record holds one
photo (``photo_description``, ``photo_url``, ``photo_id`` at the record's top level); a chat can
share several, so each photo message also carries its own three fields. The top-level fields
are the first photo's, so that any PhotoChat reader sees a valid record; photodialog's
``chat --history`` reads every photo from its message.

``photo_url`` is the photo's local file, relative to the dialogue file's folder (so a saved
dialogue names no server path and can be moved with its photos), ``photo_id`` its name under
the session folder's ``photos/``: ``load_dialogues`` on a file saved in the session folder
finds the files by id, as it does for a downloaded dataset; ``chat --history`` resolves
``photo_url`` against the file's folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from photodialog.data.schema import PHOTO_SPAN, Photo, Turn
from photodialog.files import write_text


def dialogue_record(turns: list[Turn], dialogue_id: str, base: Path | None = None) -> dict:
    """One PhotoChat record for ``turns``; photo files relative to the folder ``base`` (else absolute)."""
    messages = [message for turn in turns for message in turn_messages(turn, base)]
    record: dict = {"dialogue": messages, "dialogue_id": dialogue_id}
    first_photo = next((m for m in messages if m["share_photo"]), None)
    if first_photo is not None:
        record.update({key: first_photo[key] for key in ("photo_description", "photo_url", "photo_id")})
    return record


def turn_messages(turn: Turn, base: Path | None = None) -> list[dict]:
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
        messages.append({"message": "", "share_photo": True, "user_id": user_id, **photo_fields(photo, base)})
        position = span.end()
    add_text(turn.text[position:])
    return messages


def photo_fields(photo: Photo, base: Path | None = None) -> dict:
    return {
        "photo_description": photo.caption,
        "photo_url": local_name(Path(photo.path), base) if photo.path else (photo.url or ""),
        "photo_id": photo.photo_id or "",
    }


def local_name(file: Path, base: Path | None) -> str:
    """``file`` relative to the folder ``base`` (with ``/``), or absolute when there is no base or no relative path."""
    file = file.absolute()
    if base is None:
        return str(file)
    try:
        return Path(os.path.relpath(file, base.absolute())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return str(file)


def write_dialogue(path: str | Path, turns: list[Turn], dialogue_id: str) -> Path:
    """Write ``turns`` as a PhotoChat file (a JSON array holding one record); returns the path.

    Atomic: a reader (or a crash) never sees half a file, and a failed write leaves no
    temporary file; raises ``OSError``.
    """
    path = Path(path)
    text = json.dumps([dialogue_record(turns, dialogue_id, base=path.parent)], indent=2, ensure_ascii=False)
    write_text(path, text + "\n")
    return path

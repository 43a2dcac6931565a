"""Reading a dialogue to continue (``photodialog chat --history FILE``).

Two formats are accepted:

- **PhotoChat** (what ``/save`` writes): a JSON array holding one record, or the record itself.
  ``user_id`` 0 is the person, 1 the model. A shared photo's file is its ``photo_url`` when that
  is a local path (absolute, or relative to the history file), else it is looked up by
  ``photo_id`` under the file's folder's ``photos/``, as ``load_dialogues`` does; a photo with no
  local file is given to the model as its caption. When a photo message carries its own
  ``photo_description``/``photo_url``/``photo_id`` (several photos in one dialogue), those win.
- **JSONL turns**: one JSON object per line (or a JSON array of them),
  ``{"speaker": "user", "text": "look at this", "photos": ["cat.jpg"]}``; ``speaker`` is
  ``user``/``0`` or ``bot``/``1``; ``photos`` (optional) lists paths (relative to the history
  file) or ``{"path": ..., "caption": ...}`` objects. Each photo is added to the text as
  ``[IMG] caption [/IMG]`` unless the text already holds one such span per photo.

Every photo file named is checked like an attached photo; problems are ``UserError``s that name
the file and line or message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from photodialog import json_limits
from photodialog.data import photochat
from photodialog.data.layout import find_photo, photo_stems
from photodialog.data.loading import dataset_root, merge_messages
from photodialog.data.load_report import RecordProblem
from photodialog.data.schema import PHOTO_SPAN, Dialogue, Photo, Turn, photo_turn_text
from photodialog.errors import UserError
from photodialog.serving import BOT, USER
from photodialog.serving.limits import InputLimits, check_photo_file
from photodialog.serving.session import USER_PHOTO_CAPTION

SPEAKERS = {"user": USER, "0": USER, "bot": BOT, "assistant": BOT, "1": BOT}
FORMATS_HELP = "a PhotoChat dialogue as /save writes it, or JSONL turns ({\"speaker\": \"user\", \"text\": ...} per line)"


def read_history(path: str | Path, limits: InputLimits | None = None) -> list[Turn]:
    """The turns of the dialogue in ``path`` (see the module docstring for the formats).

    Raises ``UserError`` for a missing, unreadable or malformed file, one over
    ``limits.max_history_bytes``, JSON nested deeper than ``json_limits.MAX_DEPTH``, or more
    photos than ``limits.max_session_photos``.
    """
    path = Path(path)
    limits = limits or InputLimits()
    if not path.is_file():
        raise UserError(f"history file not found: {path}")
    too_large = json_limits.file_too_large(path, limits.max_history_bytes)
    if too_large:
        raise UserError(f"the history {too_large} (a dialogue to continue); give the dialogue itself: {FORMATS_HELP}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the history file {path} ({err}); it should be UTF-8 text: {FORMATS_HELP}") from None
    try:
        data = json_limits.loads(text)
    except json_limits.TooDeep as err:
        raise UserError(f"the history file {path} is {err}; {json_limits.DEPTH_ADVICE} ({FORMATS_HELP})") from None
    except json.JSONDecodeError:
        turns = _jsonl_turns(text, path)
    else:
        turns = _turns_of_document(data, path)
    _check_photo_files(turns, limits, path)
    return turns


def _turns_of_document(data: Any, path: Path) -> list[Turn]:
    """A whole-file JSON document: a PhotoChat record or an array holding one, or turns (one or an array)."""
    rows = data if isinstance(data, list) else [data]
    if rows and all(isinstance(row, dict) and "speaker" in row for row in rows):
        return _merged_turns([_jsonl_turn(row, path, number) for number, row in enumerate(rows, start=1)], path)
    if len(rows) > 1:
        raise UserError(f"{path} holds {len(rows)} dialogues; --history takes a file with one ({FORMATS_HELP})")
    if rows and photochat.looks_like(rows[0]):
        return _photochat_turns(rows[0], path)
    raise UserError(f"{path} is not a dialogue this command reads; expected {FORMATS_HELP}")


# ------------------------------------------------------------ PhotoChat


def _photochat_turns(record: dict, path: Path) -> list[Turn]:
    try:
        messages = photochat.parse_record(record)
    except RecordProblem as problem:
        raise UserError(f"{path}: {problem.detail}") from None
    for index, (turn, raw) in enumerate(zip(messages.turns, record["dialogue"])):
        turn.speaker = _speaker(turn.speaker, f"{path}: dialogue[{index}]")
        if turn.photos and isinstance(raw, dict) and raw.get("photo_description"):
            caption = str(raw["photo_description"]).strip()
            turn.photos = [Photo(caption, url=_text(raw, "photo_url"), photo_id=_text(raw, "photo_id"))]
        for photo in turn.photos:
            photo.path = _local_file(photo, path)
            if photo.url and "://" not in photo.url:
                photo.url = None  # a local path, now in ``path``; a URL is kept as the photo's origin
    turns = merge_messages(Dialogue(messages.dialogue_id, messages.turns)).turns
    if not turns:
        raise UserError(f"{path}: the dialogue has no messages")
    return turns


def _text(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    text = "" if value is None else str(value).strip()
    return text or None


def _local_file(photo: Photo, history_file: Path) -> str | None:
    """The photo's local file: ``photo_url`` if it is a path, else by ``photo_id`` under ``photos/``."""
    url = photo.url or ""
    if url and "://" not in url:
        file = _resolve(url, history_file)
        if not file.is_file():
            raise UserError(f"{history_file}: photo file not found: {file} (photo_url of '{photo.caption}')")
        return str(file)
    if photo.photo_id:
        root = dataset_root(history_file)
        found = next((f for f in (find_photo(root, stem) for stem in photo_stems(photo.photo_id, None)) if f), None)
        return str(found.absolute()) if found else None
    return None  # an internet photo not fetched: the model reads its caption


def _resolve(name: str, history_file: Path) -> Path:
    """``name`` as an absolute path (``..`` folded away), relative names from the history file's folder."""
    file = Path(name).expanduser()
    return Path(os.path.abspath(file if file.is_absolute() else history_file.parent / file))


# ------------------------------------------------------------ JSONL


def _jsonl_turns(text: str, path: Path) -> list[Turn]:
    turns: list[Turn] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json_limits.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not JSON ({err.msg}); expected {FORMATS_HELP}") from None
        except json_limits.TooDeep as err:
            raise UserError(f"{path}:{number}: {err}; {json_limits.DEPTH_ADVICE} ({FORMATS_HELP})") from None
        turns.append(_jsonl_turn(value, path, number))
    return _merged_turns(turns, path)


def _merged_turns(turns: list[Turn], path: Path) -> list[Turn]:
    """Consecutive turns of one speaker joined into one, as the datasets' messages are."""
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].speaker == turn.speaker:
            merged[-1].text = f"{merged[-1].text} {turn.text}".strip()
            merged[-1].photos += turn.photos
        else:
            merged.append(turn)
    if not merged:
        raise UserError(f"{path} holds no turns; expected {FORMATS_HELP}")
    return merged


def _jsonl_turn(value: Any, path: Path, number: int) -> Turn:
    where = f"{path}:{number}"
    if not isinstance(value, dict) or "speaker" not in value:
        raise UserError(f"{where}: expected an object with 'speaker', 'text' and optionally 'photos'")
    text = value.get("text", "")
    photos = value.get("photos", [])
    if not isinstance(text, str) or not isinstance(photos, list):
        raise UserError(f"{where}: 'text' should be a string and 'photos' a list")
    photos = [_jsonl_photo(item, path, where) for item in photos]
    spans = PHOTO_SPAN.findall(text)
    if spans and len(spans) != len(photos):
        raise UserError(f"{where}: the text has {len(spans)} [IMG] spans but {len(photos)} photos; "
                        "give one photo per span, or no spans")
    for photo, caption in zip(photos, spans):
        photo.caption = caption  # the span is what the turn says the photo shows
    if not spans:
        text = " ".join([text.strip()] * bool(text.strip()) + [photo_turn_text(p.caption) for p in photos])
    if not text:
        raise UserError(f"{where}: an empty turn (no text and no photos)")
    return Turn(_speaker(value["speaker"], where), text, photos)


def _jsonl_photo(item: Any, path: Path, where: str) -> Photo:
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        raise UserError(f"{where}: each photo should be a path or an object with a 'path'")
    caption = item.get("caption") or USER_PHOTO_CAPTION
    return Photo(str(caption), path=str(_resolve(item["path"], path)))


# ------------------------------------------------------------ shared


def _speaker(value: Any, where: str) -> str:
    speaker = SPEAKERS.get(str(value).strip().lower())
    if speaker is None:
        raise UserError(f"{where}: unknown speaker {value!r}; use user (or 0) and bot (or 1)")
    return speaker


def _check_photo_files(turns: list[Turn], limits: InputLimits, path: Path) -> None:
    files = [photo.path for turn in turns for photo in turn.photos if photo.path]
    if len(files) > limits.max_session_photos:
        raise UserError(f"{path} shares {len(files)} photo files, more than the {limits.max_session_photos} "
                        "one conversation may hold; continue from a shorter part of the dialogue")
    for file in files:
        check_photo_file(file, limits).close()  # checked only: the model decodes it again when it replies

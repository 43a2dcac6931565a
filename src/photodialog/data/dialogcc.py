"""DialogCC (Lee et al., NAACL 2024): one Hugging Face record -> one message-level dialogue.

The Hugging Face dataset ``passing2961/dialogcc`` publishes ``train.json``, ``valid.json`` and
``test.json`` with records (JSON arrays or JSONL) shaped like::

    {"dialogue_id": "bst_1234", "split": "train",
     "dialogue": [{"utterance_idx": 0, "utterance": "I just got back from the beach.",
                   "speaker": "A", "rationale": "...", "description": "a sunny beach",
                   "shared_image": [{"image_url": "https://...jpg", ...}, ...]}, ...]}

``shared_image`` is a list, often empty; one utterance may share several photos, each kept as
its own ``Photo`` in order. A photo-sharing utterance keeps its text (DialogCC attaches photos
to an utterance rather than sending them alone).

Caption of a photo: the record format gives each utterance one ``description`` (the image
description inferred for that sharing moment) and gives each image at least ``image_url``.
The loader takes the image's own caption-like field when present (``caption``, then
``description``, then ``image_description``: e.g. its CC3M caption), else the utterance's
``description`` (which may also be a list with one entry per image). A photo with neither is a
"photo without caption" problem. Photos have no id in DialogCC (unless an image carries
``image_id``/``photo_id``), so they are known, stored and counted by URL.
"""

from __future__ import annotations

from typing import Any

from photodialog.data.load_report import (
    PHOTO_WITHOUT_CAPTION,
    RecordProblem,
    checked_text,
    expect_mapping,
    optional,
    optional_text,
    required,
)
from photodialog.data.schema import Dialogue, Photo, Turn

NAME = "DialogCC"
IMAGE_CAPTION_KEYS = ("caption", "description", "image_description")
IMAGE_ID_KEYS = ("image_id", "photo_id")


def looks_like(record: Any) -> bool:
    """Whether ``record`` is shaped like a DialogCC record (used to pick a file's parser)."""
    if not isinstance(record, dict):
        return False
    utterances = record.get("dialogue")
    return bool(utterances) and isinstance(utterances, list) and isinstance(utterances[0], dict) and (
        "utterance" in utterances[0] or "shared_image" in utterances[0]
    )


def parse_record(record: Any) -> Dialogue:
    """One record as a *message-level* dialogue: one ``Turn`` per utterance, photos attached.

    The record's ``split`` field (``valid`` read as ``dev``) is applied by the loader, which
    reads it for every format.
    """
    record = expect_mapping(record, "the record")
    dialogue_id = str(required(record, "dialogue_id", (str, int)))
    utterances = required(record, "dialogue", (list,))
    turns = [_parse_utterance(u, f"dialogue[{i}]") for i, u in enumerate(utterances)]
    return Dialogue(dialogue_id=dialogue_id, turns=turns)


def _parse_utterance(utterance: Any, where: str) -> Turn:
    utterance = expect_mapping(utterance, where)
    text = required(utterance, "utterance", (str,), where)
    speaker = required(utterance, "speaker", (str, int), where)
    images = optional(utterance, "shared_image", (list,), where, default=[])
    descriptions = _utterance_descriptions(utterance, where, len(images))
    photos = [
        _parse_image(image, descriptions[j], f"{where}.shared_image[{j}]") for j, image in enumerate(images)
    ]
    return Turn(speaker=str(speaker), text=text, photos=photos)


def _utterance_descriptions(utterance: dict, where: str, n_images: int) -> list[str | None]:
    """The utterance-level caption for each of its images (one string for all, or one per image)."""
    value = optional(utterance, "description", (str, list), where)
    if isinstance(value, list):
        per_image = [_caption_text(item, where) for item in value]
    else:
        per_image = [_caption_text(value, where)] * n_images
    return (per_image + [None] * n_images)[:n_images]


def _caption_text(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        return None
    return checked_text(value, "description", where).strip() or None


def _parse_image(image: Any, fallback_caption: str | None, where: str) -> Photo:
    image = expect_mapping(image, where)
    url = required(image, "image_url", (str,), where).strip() or None
    caption = next(filter(None, (optional_text(image, key, where) for key in IMAGE_CAPTION_KEYS)), None)
    caption = caption or fallback_caption
    if not caption:
        raise RecordProblem(
            PHOTO_WITHOUT_CAPTION,
            f"{where} has no caption (no {'/'.join(IMAGE_CAPTION_KEYS)} and no utterance 'description')",
        )
    photo_id = next(filter(None, (optional_text(image, key, where) for key in IMAGE_ID_KEYS)), None)
    return Photo(caption=caption, url=url, photo_id=photo_id)

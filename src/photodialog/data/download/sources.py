"""Where the dialogue files of each dataset live, and where the photos are in a record.

PhotoChat (Zang et al., 2021; CC BY 4.0) is published in the google-research repository as
``multimodalchat/photochat/{train,dev,test}/{split}_NN.json``: JSON arrays of 500 dialogues,
21 train files (10,286 dialogues), 2 dev and 2 test files (1,000 each), one photo per dialogue.

DialogCC (Lee et al., 2024; CC BY-NC-SA 4.0) is the Hugging Face dataset
``passing2961/dialogcc`` with one file per split: ``train.json``, ``valid.json`` and
``test.json`` (68,402 / 7,644 / 7,324 dialogues). Every turn has a ``shared_image`` list (often
empty) of CC3M photos with an ``image_url``, and a ``description`` of the photo to share.

Base URLs can be overridden (``--base-url`` or the environment variable of each source), e.g.
to a mirror, a local HTTP server or a ``file://`` copy of the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from photodialog.data.layout import SPLITS, canonical_split, photo_stem
from photodialog.errors import UserError


@dataclass(frozen=True)
class RemoteFile:
    """One published dialogue file: its split, its path under the base URL and in the folder."""

    split: str  # canonical: train / dev / test
    remote_path: str
    local_path: str


@dataclass(frozen=True)
class PhotoRef:
    """A photo that a dialogue shares: where to fetch it, where it goes, how to redraw it."""

    url: str | None
    stem: str
    caption: str
    split: str


@dataclass(frozen=True)
class DatasetSource:
    """Everything `data download` needs to know about one dataset."""

    name: str
    title: str
    licence: str
    default_base_url: str
    base_url_env: str
    files: tuple[RemoteFile, ...]
    photo_refs: Callable[[dict, str], Iterator[PhotoRef]]

    def base_url(self, override: str | None = None) -> str:
        """``override`` if given, else the environment variable, else the published location."""
        return (override or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")

    def files_for(self, splits: list[str]) -> list[RemoteFile]:
        """The published files of the given splits, in publication order."""
        return [f for f in self.files if f.split in splits]


def parse_splits(text: str | None) -> list[str]:
    """``"train,valid"`` -> ``["train", "dev"]``; None means all three splits."""
    if not text:
        return list(SPLITS)
    splits = [canonical_split(part) for part in text.split(",") if part.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise UserError(
            f"unknown split(s) {unknown or text!r}: use a comma-separated list of train, dev (or valid), test"
        )
    return list(dict.fromkeys(splits))


# --- PhotoChat -------------------------------------------------------------------------------

PHOTOCHAT_FILE_COUNTS = {"train": 21, "dev": 2, "test": 2}


def _photochat_files() -> tuple[RemoteFile, ...]:
    files = []
    for split, count in PHOTOCHAT_FILE_COUNTS.items():
        for index in range(count):
            name = f"{split}/{split}_{index:02d}.json"
            files.append(RemoteFile(split=split, remote_path=name, local_path=name))
    return tuple(files)


def photochat_photo_refs(record: dict, split: str) -> Iterator[PhotoRef]:
    """PhotoChat: one photo per dialogue, ``photo_url`` and (in most versions) ``photo_id``."""
    url = record.get("photo_url") or None
    photo_id = record.get("photo_id") or None
    if not url and not photo_id:
        return
    yield PhotoRef(
        url=url,
        stem=photo_stem(photo_id, url),
        caption=str(record.get("photo_description") or "").strip(),
        split=split,
    )


PHOTOCHAT = DatasetSource(
    name="photochat",
    title="PhotoChat (Zang et al., ACL 2021)",
    licence="CC BY 4.0",
    default_base_url=(
        "https://raw.githubusercontent.com/google-research/google-research/master/multimodalchat/photochat"
    ),
    base_url_env="PHOTODIALOG_PHOTOCHAT_BASE_URL",
    files=_photochat_files(),
    photo_refs=photochat_photo_refs,
)


# --- DialogCC --------------------------------------------------------------------------------


def dialogcc_photo_refs(record: dict, split: str) -> Iterator[PhotoRef]:
    """DialogCC: any number of photos per turn, each named by a hash of its URL.

    The caption (what a dead photo is redrawn from) is the one the DialogCC loader gives the
    photo: the image's own caption-like field, else the turn's ``description`` (one string for
    all its images, or a list with one per image).
    """
    for turn in record.get("dialogue") or []:
        if not isinstance(turn, dict):
            continue
        images = turn.get("shared_image") or []
        descriptions = _turn_descriptions(turn.get("description"), len(images))
        for image, description in zip(images, descriptions):
            url = image.get("image_url") if isinstance(image, dict) else image if isinstance(image, str) else None
            if not url:
                continue
            caption = _image_caption(image) or description
            yield PhotoRef(url=url, stem=photo_stem(None, url), caption=caption, split=split)


def _turn_descriptions(value, count: int) -> list[str]:
    if isinstance(value, list):
        per_image = [item.strip() if isinstance(item, str) else "" for item in value]
    else:
        per_image = [value.strip() if isinstance(value, str) else ""] * count
    return (per_image + [""] * count)[:count]


def _image_caption(image) -> str:
    from photodialog.data.dialogcc import IMAGE_CAPTION_KEYS  # one rule for the loader and for redrawing

    if not isinstance(image, dict):
        return ""
    found = (image.get(key) for key in IMAGE_CAPTION_KEYS)
    return next((text.strip() for text in found if isinstance(text, str) and text.strip()), "")


DIALOGCC = DatasetSource(
    name="dialogcc",
    title="DialogCC (Lee et al., NAACL 2024)",
    licence="CC BY-NC-SA 4.0",
    default_base_url="https://huggingface.co/datasets/passing2961/dialogcc/resolve/main",
    base_url_env="PHOTODIALOG_DIALOGCC_BASE_URL",
    # The split is called "valid" in the published files and kept so; the loader reads it as dev.
    files=(
        RemoteFile("train", "train.json", "train.json"),
        RemoteFile("dev", "valid.json", "valid.json"),
        RemoteFile("test", "test.json", "test.json"),
    ),
    photo_refs=dialogcc_photo_refs,
)


SOURCES: dict[str, DatasetSource] = {source.name: source for source in (PHOTOCHAT, DIALOGCC)}


def get_source(name: str) -> DatasetSource:
    """The source called ``name`` (``photochat`` or ``dialogcc``)."""
    try:
        return SOURCES[name.strip().lower()]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(SOURCES)}") from None

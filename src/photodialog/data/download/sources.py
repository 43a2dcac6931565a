"""Where the dialogue files of each dataset live, and which photos a record shares.

The photos of a record are found by the loader's own parser (``photochat``/``dialogcc``), so
`data download` fetches exactly the photos that loading and training look for, under the names
they look for.

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
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from photodialog.data import dialogcc, photochat
from photodialog.data.layout import SPLITS, canonical_split, photo_stem
from photodialog.data.loading import parse_dialogue
from photodialog.data.load_report import RecordProblem
from photodialog.errors import UserError
from photodialog.registry import DATASET_SOURCES


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
    photo_id: str | None = None  # PhotoChat's Open Images id ("train/624e5f6dd7f64d89")


@dataclass(frozen=True)
class DatasetSource:
    """Everything `data download` needs to know about one dataset."""

    name: str
    title: str
    default_base_url: str
    base_url_env: str
    files: tuple[RemoteFile, ...]
    parser: ModuleType  # the loader's parser of its records: photochat or dialogcc

    def photo_refs(self, record: dict, split: str) -> Iterator[PhotoRef]:
        """The photos of ``record`` exactly as the loader will look for them.

        The record is read by the loader's own parser, so a photo is fetched only if training
        can use it (a record the loader skips, or a photo no message shares, costs no request)
        and is saved under the name the loader derives from the same stripped id and URL.
        """
        try:
            dialogue = parse_dialogue(self.parser, record)
        except RecordProblem:
            return
        for turn in dialogue.turns:
            for photo in turn.photos:
                if photo.photo_id or photo.url:
                    stem = photo_stem(photo.photo_id, photo.url)
                    yield PhotoRef(url=photo.url, stem=stem, caption=photo.caption, split=split, photo_id=photo.photo_id)

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


PHOTOCHAT = DatasetSource(
    name="photochat",
    title="PhotoChat (Zang et al., ACL 2021)",
    default_base_url=(
        "https://raw.githubusercontent.com/google-research/google-research/master/multimodalchat/photochat"
    ),
    base_url_env="PHOTODIALOG_PHOTOCHAT_BASE_URL",
    files=_photochat_files(),
    parser=photochat,
)


# --- DialogCC --------------------------------------------------------------------------------

DIALOGCC = DatasetSource(
    name="dialogcc",
    title="DialogCC (Lee et al., NAACL 2024)",
    default_base_url="https://huggingface.co/datasets/passing2961/dialogcc/resolve/main",
    base_url_env="PHOTODIALOG_DIALOGCC_BASE_URL",
    # The split is called "valid" in the published files and kept so; the loader reads it as dev.
    files=(
        RemoteFile("train", "train.json", "train.json"),
        RemoteFile("dev", "valid.json", "valid.json"),
        RemoteFile("test", "test.json", "test.json"),
    ),
    parser=dialogcc,
)


# The downloadable datasets are those of ``photodialog.registry.DATASET_SOURCES`` (the command's choices).
SOURCES: dict[str, DatasetSource] = {name: DATASET_SOURCES.load(name) for name in DATASET_SOURCES.names}


def get_source(name: str) -> DatasetSource:
    """The source called ``name`` (``photochat`` or ``dialogcc``)."""
    try:
        return SOURCES[name.strip().lower()]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(SOURCES)}") from None

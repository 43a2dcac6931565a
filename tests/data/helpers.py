"""Small builders shared by the data-loading tests: fixture copies, photos, records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"


def copy_fixture(name: str, destination: Path) -> Path:
    """A writable copy of ``fixtures/<name>`` (tests add photos and broken files to it)."""
    target = destination / name
    shutil.copytree(FIXTURES / name, target)
    return target


def write_png(path: Path, size: tuple[int, int] = (16, 12), seed: int = 0) -> Path:
    """A noisy RGB PNG (noise keeps it from compressing to a few bytes, so cutting it truncates pixels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def truncate_file(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def photochat_record(dialogue_id: int, messages: list[tuple[int, str | None]], **photo) -> dict:
    """A PhotoChat record; a message given as ``(user, None)`` shares the photo."""
    record = {
        "dialogue": [
            {"message": text or "", "share_photo": text is None, "user_id": user} for user, text in messages
        ],
        "dialogue_id": dialogue_id,
        "photo_description": "Objects in the photo: Cat",
        "photo_url": f"https://example.org/{dialogue_id}.jpg",
        "photo_id": f"train/{dialogue_id:06d}",
    }
    record.update(photo)
    return record


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path

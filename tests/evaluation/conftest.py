"""Shared helpers of the evaluation tests: photo and result factories (the tiny IS/FID extractor
is the session fixture ``tiny_extractor`` of ``tests/conftest.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from photodialog.evaluation.metrics import MetricSet, SeedResult, build_result, unavailable_entry

def _random_photos(count: int, size: tuple[int, int] = (32, 32), seed: int = 0, shift: int = 0) -> list[Image.Image]:
    """Photos of random colour blocks; ``shift`` brightens every pixel (a different distribution)."""
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(count):
        blocks = rng.integers(0, 196, size=(4, 4, 3))
        pixels = np.kron(blocks, np.ones((size[1] // 4 + 1, size[0] // 4 + 1, 1)))[: size[1], : size[0]]
        photos.append(Image.fromarray(np.clip(pixels + shift, 0, 255).astype(np.uint8)))
    return photos


@pytest.fixture
def random_photos():
    """Factory of lists of random-block photos (see ``_random_photos``)."""
    return _random_photos


@pytest.fixture
def make_result():
    """Factory of validated eval results with given per-seed metric values."""

    def factory(name: str, per_seed: dict[int, dict[str, float]], unavailable: dict[str, str] | None = None):
        seed_results = []
        for seed, values in per_seed.items():
            missing = {key: unavailable_entry(reason) for key, reason in (unavailable or {}).items()}
            seed_results.append(SeedResult(seed).add(MetricSet(values=dict(values), unavailable=missing)))
        return build_result(
            model={"name": name}, data={"dataset": "synthetic", "split": "test"}, seed_results=seed_results
        )

    return factory


def _required_values(**overrides: float) -> dict[str, float]:
    """A full set of required metric values, with some replaced."""
    values = {
        "bleu1": 12.0,
        "bleu2": 3.0,
        "rouge_l": 11.0,
        "is": 14.0,
        "is_split_std": 0.9,
        "fid": 75.0,
        "share_precision": 50.0,
        "share_recall": 40.0,
        "share_f1": 44.4,
    }
    values.update(overrides)
    return values


@pytest.fixture
def required_values():
    """Factory of a full set of required metric values (Table 2 + share moment), some overridden."""
    return _required_values

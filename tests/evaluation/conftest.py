"""Shared helpers of the evaluation tests: a tiny offline feature extractor and result factories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch_fidelity
from PIL import Image
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from photodialog.evaluation.results import MetricSet, SeedResult, build_result, unavailable_entry

TINY_EXTRACTOR = "photodialog-test-tiny"
TINY_CLASSES = 5


class TinyFeatureExtractor(FeatureExtractorBase):
    """Stands in for Inception: 'pool' = mean colour of each image quadrant (12 numbers, for FID),
    'logits' = a fixed random projection of them (TINY_CLASSES classes, for IS)."""

    NUM_CLASSES = TINY_CLASSES

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("projection", torch.randn(12, TINY_CLASSES, generator=generator) * 8.0)

    @staticmethod
    def get_provided_features_list():
        return "pool", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "pool"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3
        pool = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255.0, 2).flatten(1)
        features = {"pool": pool, "logits": (pool - 0.5) @ self.projection}
        return tuple(features[name] for name in self.features_list)


@pytest.fixture(scope="session")
def tiny_extractor() -> str:
    """Name of the tiny extractor, registered once per session (the registry is global)."""
    if TINY_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(TINY_EXTRACTOR, TinyFeatureExtractor)
    return TINY_EXTRACTOR


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

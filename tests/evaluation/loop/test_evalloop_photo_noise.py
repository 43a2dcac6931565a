"""The photos of an evaluation depend only on the seed: a rerun draws the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photodialog.evaluation.runner import draw_photos
from photodialog.models.generation_settings import GenerationSettings

CAPTIONS = ["a red car in the park", "a blue cup on the beach", "a green tree at night"]


@pytest.fixture(scope="module")
def tiny_generator(tiny_run):
    from photodialog.system import load_system

    return load_system(str(tiny_run), "cpu").model.generator


def _pixels(photos) -> list[np.ndarray]:
    return [np.asarray(photo) for photo in photos]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_same_seed_draws_the_same_photos_whatever_the_global_rng_did(tiny_generator, sampler):
    # DDPM adds fresh noise at every step: that noise must come from the seed, not torch's global RNG.
    settings = GenerationSettings(diffusion_steps=3, guidance_scale=1.0, sampler=sampler)
    first = _pixels(draw_photos(tiny_generator, CAPTIONS, settings, seed=4, batch_size=2, progress=False))
    torch.randn(1000)  # advance the global RNG, as text sampling or anything else would
    torch.manual_seed(12345)
    again = _pixels(draw_photos(tiny_generator, CAPTIONS, settings, seed=4, batch_size=2, progress=False))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = _pixels(draw_photos(tiny_generator, CAPTIONS, settings, seed=5, batch_size=2, progress=False))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))  # the seed does change the photos

"""Rendered photos: reproducible, varied, and showing what the caption says."""

from __future__ import annotations

import numpy as np
import pytest

from photodialog.data.synth.attributes import COLOURS, OBJECTS, SCENES, Triple
from photodialog.data.synth.render import render_photo


def object_colour_mask(image, colour: str, tolerance: float = 60.0) -> np.ndarray:
    """Pixels within ``tolerance`` (RGB distance) of ``colour``."""
    pixels = np.asarray(image, dtype=np.float32)
    return np.linalg.norm(pixels - np.array(COLOURS[colour], dtype=np.float32), axis=-1) < tolerance


def dominant_palette_colour(image) -> str:
    """The world colour most pixels are close to (backgrounds are far from every one)."""
    return max(COLOURS, key=lambda c: object_colour_mask(image, c).sum())


def test_same_seed_same_photo_other_seed_other_photo():
    triple = Triple("car", "red", "beach")
    a = np.asarray(render_photo(triple, np.random.default_rng(5), 48))
    b = np.asarray(render_photo(triple, np.random.default_rng(5), 48))
    c = np.asarray(render_photo(triple, np.random.default_rng(6), 48))
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


@pytest.mark.parametrize("size", [16, 32, 64, 100])
def test_photo_is_rgb_of_the_requested_size(size):
    image = render_photo(Triple("star", "blue", "night"), np.random.default_rng(0), size)
    assert image.mode == "RGB" and image.size == (size, size)


@pytest.mark.parametrize("colour", list(COLOURS))
def test_object_colour_dominates_and_is_large_and_central_in_every_scene(colour):
    for k, (obj, scene) in enumerate((o, s) for o in OBJECTS for s in SCENES):
        image = render_photo(Triple(obj, colour, scene), np.random.default_rng(k), 64)
        mask = object_colour_mask(image, colour)
        assert dominant_palette_colour(image) == colour, (obj, scene)
        # At least a few percent of the photo, even for thin shapes like a star or a fish.
        assert mask.mean() > 0.025, (obj, scene, mask.mean())
        ys, xs = np.nonzero(mask)
        assert abs(xs.mean() - 32) < 12 and abs(ys.mean() - 32) < 12, (obj, scene)


def test_scenes_have_distinct_backgrounds():
    """The average colour of each scene's background differs clearly from every other scene's."""
    means = {}
    for scene in SCENES:
        corners = []
        for k in range(4):
            pixels = np.asarray(render_photo(Triple("ball", "red", scene), np.random.default_rng(k), 64),
                                dtype=np.float32)
            corners.append(np.concatenate([pixels[:8, :8].reshape(-1, 3), pixels[-8:, -8:].reshape(-1, 3)]))
        means[scene] = np.concatenate(corners).mean(axis=0)
    for a in SCENES:
        for b in SCENES:
            if a < b:
                assert np.linalg.norm(means[a] - means[b]) > 20, (a, b)

"""IS / FID over sets too small for the protocol are reported unavailable, never as 1.0 ± 0 (issue 18 item 8)."""

from __future__ import annotations

import pytest

from photodialog.evaluation.image_metrics import fidelity_metric_set, fidelity_scores


def _scores(generated, reference, extractor, **kwargs):
    return fidelity_scores(generated, reference, inception_weights=None, feature_extractor=extractor, **kwargs)


def _photos(count, seed=0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(count)]


@pytest.mark.parametrize("generated", [1, 5, 19])
def test_is_over_fewer_photos_than_two_per_split_is_unavailable_with_the_minimum(tiny_extractor, generated):
    scores = _scores(_photos(generated), _photos(8, seed=1), tiny_extractor, isc_splits=10)
    reason = scores["unavailable"]["is"]["reason"] if scores["available"] else scores["reason"]
    assert "at least 20 generated photos" in reason and f"found {generated}" in reason
    metric_set = fidelity_metric_set(scores)
    assert "is" not in metric_set.values and "is" in metric_set.unavailable


def test_enough_photos_give_an_is_over_the_requested_splits(tiny_extractor):
    scores = _scores(_photos(20), _photos(8, seed=1), tiny_extractor, isc_splits=10)
    assert scores["unavailable"] == {} and scores["isc_splits"] == 10
    assert scores["is_mean"] > 1.0  # distinct random photos: not the 1.0 of one photo per split


def test_fid_with_one_photo_on_a_side_is_unavailable(tiny_extractor):
    one_reference = _scores(_photos(20), _photos(1, seed=1), tiny_extractor, isc_splits=10)
    assert one_reference["fid"] is None and "found 20 and 1" in one_reference["unavailable"]["fid"]["reason"]
    one_generated = _scores(_photos(1), _photos(8, seed=1), tiny_extractor, isc_splits=1)
    assert not one_generated["available"]
    assert "IS needs at least 2" in one_generated["reason"] and "FID needs at least 2" in one_generated["reason"]

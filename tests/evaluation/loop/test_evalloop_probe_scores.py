"""The probe scores' grouping, naming and edge cases, with a probe whose answers are set by the test."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from photodialog.data.synth import find_attributes
from photodialog.evaluation.metrics import metric_order
from photodialog.evaluation.attribute_metrics import (
    ProbeScorer, all_probe_keys, group_keys, load_probe_scorer,
)

OBJECTS = ["ball", "box", "tree", "house", "car", "cup", "star", "fish"]
COLOURS = ["blue", "green", "orange", "purple", "red", "yellow"]
SCENES = ["beach", "park", "city", "snow", "night"]


class ScriptedProbe:
    """Answers ``predict`` with the given attribute dicts, in order; features = mean colour."""

    def __init__(self, answers):
        self.answers = list(answers)
        lists = {"object": OBJECTS, "colour": COLOURS, "scene": SCENES}
        self.config = SimpleNamespace(classes=lambda kind: lists[kind])

    def predict(self, images):
        assert len(images) == len(self.answers)
        return self.answers

    def features(self, images):
        return np.array([np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images]).reshape(-1, 3)


def _photos(n):
    return [Image.new("RGB", (8, 8), (30 * i, 200 - 20 * i, 7 * i)) for i in range(n)]


def test_accuracy_against_captions_counts_each_attribute_and_all_correct():
    answers = [dict(object="car", colour="red", scene="night"), dict(object="car", colour="blue", scene="night")]
    scorer = ProbeScorer(ScriptedProbe(answers))
    targets = [find_attributes("a red car at night"), find_attributes("a red car at night")]
    scores = scorer.accuracy("caption", _photos(2), targets)
    assert scores.values == {
        "probe_acc_caption_object": 100.0, "probe_acc_caption_colour": 50.0,
        "probe_acc_caption_scene": 100.0, "probe_acc_caption_all": 50.0,
    }
    assert scores.chance["probe_acc_caption_object"] == pytest.approx(100.0 / len(OBJECTS))
    assert scores.chance["probe_acc_caption_all"] == pytest.approx(100.0 / (len(OBJECTS) * len(COLOURS) * len(SCENES)))
    assert scores.counts == {"probe_caption_photos": 2, "probe_caption_unchecked": 0}


def test_a_caption_naming_nothing_is_left_out_and_a_partial_one_counts_what_it_names():
    answers = [dict(object="cup", colour="green", scene="park")]
    scorer = ProbeScorer(ScriptedProbe(answers))
    targets = [find_attributes("something nice"), find_attributes("a green thing")]
    scores = scorer.accuracy("caption", _photos(2), targets)
    assert scores.counts["probe_caption_unchecked"] == 1 and scores.counts["probe_caption_photos"] == 1
    assert scores.values["probe_acc_caption_colour"] == 100.0
    assert scores.values["probe_acc_caption_all"] == 100.0  # only the named attribute must be right
    assert "probe_acc_caption_object" not in scores.values  # no caption names an object: no score
    assert scores.unavailable["probe_acc_caption_object"]["reason"] == "no caption target names an object"


def test_a_group_with_nothing_to_check_is_unavailable_with_a_reason():
    scores = ProbeScorer(ScriptedProbe([])).accuracy("gold", [], [])
    assert set(scores.unavailable) == set(group_keys("gold"))
    assert "both the model and the gold response share a photo" in scores.unavailable["probe_acc_gold_all"]["reason"]


def test_frechet_distance_is_zero_for_the_same_photos_and_named_by_its_key():
    scorer = ProbeScorer(ScriptedProbe([]))
    photos = _photos(4)
    reference = scorer.features(photos)
    same = scorer.frechet("probe_fid_generator", photos, reference)
    assert same.values["probe_fid_generator"] == pytest.approx(0.0, abs=1e-3)
    other = scorer.frechet("probe_fid", [Image.new("RGB", (8, 8), (255, 255, 255))] * 2 + photos[:2], reference)
    assert other.values["probe_fid"] > 1.0
    too_few = scorer.frechet("probe_fid", photos[:1], reference)
    assert "at least 2 photos" in too_few.unavailable["probe_fid"]["reason"]


def test_table_order_puts_probe_groups_last_in_a_fixed_order():
    aggregate = {key: {} for key in reversed(all_probe_keys())}
    aggregate = {"bleu1": {}, **aggregate, "share_f1": {}}
    assert list(metric_order(aggregate)) == ["bleu1", "share_f1", *all_probe_keys()]


def test_probe_scorer_is_found_only_in_a_synthetic_world(eval_world, tmp_path):
    scorer, problem = load_probe_scorer(eval_world)
    assert scorer is not None and problem is None
    no_probe = tmp_path / "world"
    shutil.copytree(eval_world, no_probe, ignore=shutil.ignore_patterns("probe"))
    scorer, problem = load_probe_scorer(no_probe)
    assert scorer is None and f"photodialog data probe {no_probe}" in problem["fix"]
    (no_probe / "world.json").unlink()
    assert load_probe_scorer(no_probe) == (None, None)

"""Probe attribute accuracies with chance levels, and the Frechet distance in any feature space."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from photodialog.errors import DataError
from photodialog.evaluation.attribute_metrics import attribute_scores, frechet_distance, probe_fid_metric_set


def test_hand_computed_accuracies_and_chance_levels():
    targets = [
        {"object": "cup", "colour": "red"},
        {"object": "cup", "colour": "blue"},
        {"object": "dog", "colour": "red"},
        {"object": "cat", "colour": "red"},
    ]
    predicted = [
        {"object": "cup", "colour": "red"},  # both right
        {"object": "cup", "colour": "red"},  # colour wrong
        {"object": "cat", "colour": "red"},  # object wrong
        {"object": "cat"},  # colour missing -> wrong
    ]
    scores = attribute_scores(predicted, targets, num_classes={"object": 4, "colour": 5})
    assert scores.per_attribute["object"].accuracy == pytest.approx(75.0)
    assert scores.per_attribute["colour"].accuracy == pytest.approx(50.0)
    assert scores.all_correct_accuracy == pytest.approx(25.0)
    assert scores.per_attribute["object"].chance == pytest.approx(25.0)
    assert scores.all_correct_chance == pytest.approx(100 * (1 / 4) * (1 / 5))
    metric_set = scores.as_metric_set()
    assert list(metric_set.values) == ["probe_acc_object", "probe_acc_colour", "probe_all_correct"]
    assert metric_set.values["probe_acc_colour"] == pytest.approx(50.0)
    assert metric_set.chance == pytest.approx(
        {"probe_acc_object": 25.0, "probe_acc_colour": 20.0, "probe_all_correct": 5.0}
    )
    assert metric_set.counts == {"probe_photos": 4}


def test_classes_inferred_from_the_values_seen():
    targets = [{"colour": "red"}, {"colour": "blue"}]
    predicted = [{"colour": "green"}, {"colour": "blue"}]
    scores = attribute_scores(predicted, targets)
    assert scores.per_attribute["colour"].classes == 3  # red, blue, green
    assert scores.per_attribute["colour"].chance == pytest.approx(100 / 3)


def test_undefined_targets_are_left_out():
    targets = [{"object": "cup", "scene": None}, {"object": "dog", "scene": "park"}]
    predicted = [{"object": "cup", "scene": "kitchen"}, {"object": "dog", "scene": "beach"}]
    scores = attribute_scores(predicted, targets)
    assert scores.per_attribute["scene"].total == 1 and scores.per_attribute["scene"].accuracy == 0.0
    # Photo 0 is all-correct on its defined attributes; photo 1 misses its scene.
    assert scores.all_correct == 1


def test_bad_inputs_are_reported():
    with pytest.raises(DataError, match="photo 1"):
        attribute_scores([{"a": "x"}, {"a": "y"}], [{"a": "x"}, {"b": "y"}])
    with pytest.raises(DataError):
        attribute_scores([], [])
    with pytest.raises(ValueError):
        attribute_scores([{}], [])


def test_frechet_distance_matches_torch_fidelity_on_well_conditioned_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) * 0.5 + 1.0
    stats = [fid_features_to_statistics(torch.from_numpy(x)) for x in (a, b)]
    expected = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_one_dimensional_gaussians():
    a, b = np.array([[0.0], [2.0], [4.0]]), np.array([[10.0], [11.0]])
    # Sample variances 4 and 0.5, means 2 and 10.5: d = 8.5^2 + (2 - sqrt(0.5))^2.
    assert frechet_distance(a, b) == pytest.approx(8.5**2 + (2 - np.sqrt(0.5)) ** 2, rel=1e-9)


@pytest.mark.parametrize("samples,dims", [(3, 10), (5, 5), (50, 8)])
def test_frechet_distance_small_sets_self_zero_and_shift_gives_squared_norm(samples, dims):
    rng = np.random.default_rng(samples)
    a = rng.normal(size=(samples, dims))
    shift = rng.normal(size=dims)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)  # round-off of the square roots only
    # Same covariance, means apart by `shift`: the distance is |shift|^2 (singular covariances included).
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6, abs=1e-6)
    assert frechet_distance(a, rng.normal(size=(samples, dims)) * 3) > 0


def test_frechet_distance_rejects_what_it_cannot_fit():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 2), np.nan), np.zeros((4, 2)))


def test_probe_fid_metric_set():
    rng = np.random.default_rng(1)
    ok = probe_fid_metric_set(rng.normal(size=(6, 3)), rng.normal(size=(6, 3)))
    assert ok.values["probe_fid"] > 0 and not ok.unavailable
    too_small = probe_fid_metric_set(rng.normal(size=(1, 3)), rng.normal(size=(6, 3)))
    assert "probe_fid" in too_small.unavailable and not too_small.values


def test_caption_accuracy_counts_every_gold_photo_turn_a_missing_caption_as_wrong():
    from photodialog.evaluation.attribute_metrics import caption_accuracy

    gold = ["a red car at night", "a blue cup in the snow", "a green fish at the beach", "a red car at night"]
    own = ["a red car at night", None, "a green star at the beach", "a photo of something"]
    scores = caption_accuracy(own, gold)
    assert scores.counts == {"caption_turns": 4}
    assert scores.values["caption_acc_object"] == 25.0  # only the first names the gold object
    assert scores.values["caption_acc_colour"] == 50.0 and scores.values["caption_acc_scene"] == 50.0
    assert scores.values["caption_acc_all"] == 25.0
    assert scores.chance["caption_acc_object"] == 12.5
    with pytest.raises(ValueError):
        caption_accuracy(own[:2], gold)


def test_the_reply_to_an_unannounced_photo_is_found_and_scored():
    from photodialog.data.schema import Photo, Sample, Turn
    from photodialog.evaluation.attribute_metrics import reply_object_accuracy, unannounced_photo_turns

    photo = Turn("A", "hi! look! [IMG] a red car at night [/IMG]", [Photo("a red car at night", "x.png")])
    told = Turn("A", "i got a red car [IMG] a red car at night [/IMG]", [Photo("a red car at night", "x.png")])
    samples = [Sample("1", 1, [photo], Turn("B", "nice car!")), Sample("2", 1, [told], Turn("B", "nice car!")),
               Sample("3", 1, [Turn("A", "hi")], Turn("B", "hello"))]
    assert unannounced_photo_turns(samples) == {0: "car"}  # the second says "car" in its text: no photo needed
    assert reply_object_accuracy(["what a cute car", "love that cup"], ["car", "car"]) == 50.0


def test_the_shared_photo_match_counts_every_gold_photo_turn_a_turn_without_a_photo_as_a_miss():
    """The demo's primary endpoint: every gold photo turn is in the denominator, so two models are
    scored on the same turns however often they share."""
    from types import SimpleNamespace

    from photodialog.evaluation.attribute_metrics import ProbeScorer

    class ReadsTheName:  # a probe that reads a photo's attributes off its name
        config = SimpleNamespace(classes=lambda kind: {"object": ["car", "cup"], "colour": ["red", "blue"],
                                                      "scene": ["night", "snow"]}[kind])

        def predict(self, photos):
            return [dict(zip(("object", "colour", "scene"), p.split())) for p in photos]

    scorer = ProbeScorer(ReadsTheName())
    gold = [{"object": "car", "colour": "red", "scene": "night"}] * 3 + [{"object": "cup", "colour": "blue", "scene": "snow"}]
    photos = ["car red night", None, "car blue night", "cup blue snow"]
    scores = scorer.match_over_turns(photos, gold)
    assert scores.counts == {"photo_match_turns": 4, "photo_match_shared": 3}
    assert scores.values["photo_match_colour"] == 50.0  # 2 of 4: the turn without a photo is a miss
    assert scores.values["photo_match_object"] == 75.0 and scores.values["photo_match_all"] == 50.0
    assert scores.chance["photo_match_colour"] == 50.0 and scores.chance["photo_match_all"] == 12.5
    assert scorer.match_over_turns([None] * 4, gold).values["photo_match_all"] == 0.0
    with pytest.raises(ValueError):
        scorer.match_over_turns(photos[:2], gold)


def test_gold_attributes_come_from_the_world_where_the_caption_leaves_one_out():
    from photodialog.data.schema import Photo, Sample, Turn
    from photodialog.evaluation.attribute_metrics import caption_accuracy, gold_photo_attributes

    hi = Turn("A", "i saw a red car at night")
    samples = [Sample("1", 1, [hi], Turn("A", "", [Photo("a car at night", "x.png", photo_id="test/000001")])),
               Sample("2", 1, [hi], Turn("B", "cool")),
               Sample("3", 1, [hi], Turn("A", "", [Photo("a blue cup in the snow", "y.png", photo_id="test/000002")]))]
    truth = {"test/000001": {"object": "car", "colour": "red", "scene": "night"}}
    gold = gold_photo_attributes(samples, truth)
    assert gold == {0: truth["test/000001"], 2: {"object": "cup", "colour": "blue", "scene": "snow"}}
    assert gold_photo_attributes(samples)[0]["colour"] is None  # the caption alone does not say it
    # a caption that drops the colour is wrong on colour against what the photo shows
    scores = caption_accuracy(["a car at night", "a blue cup in the snow"], list(gold.values()))
    assert scores.values["caption_acc_colour"] == 50.0 and scores.values["caption_acc_object"] == 100.0

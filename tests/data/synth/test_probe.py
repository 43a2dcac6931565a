"""The photo probe: learns fast, is deterministic, saves and loads, scores and embeds photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from photodialog.data.synth import Triple, load_world
from photodialog.data.synth.probe import Probe, train_probe
from photodialog.data.synth.probe_augment import augment
from photodialog.errors import DataError

CHANCE = {"object": 1 / 8, "colour": 1 / 6, "scene": 1 / 5}


@pytest.fixture(scope="module")
def quick_probe(probe_world, tmp_path_factory):
    """A probe trained for a few epochs on 240 photos (seconds on CPU)."""
    out = tmp_path_factory.mktemp("probe") / "probe"
    report = train_probe(probe_world, out_dir=out, epochs=6, batch_size=32, progress=False)
    return report, Probe.load(out)


def test_a_quick_probe_reads_colour_and_scene_far_above_chance(quick_probe):
    """Colour and scene are learnt in a few epochs; the object (its shape) needs the full world
    and about 600 steps, which the slow test below checks."""
    report, _ = quick_probe
    assert report.train_photos == 240 and report.test_photos == 30
    for kind in ("colour", "scene"):
        assert report.accuracy[kind] >= 3 * CHANCE[kind], (kind, report.accuracy)
    assert report.train_loss[-1] < 0.8 * report.train_loss[0]


def test_predict_and_score_agree_with_the_report(quick_probe, probe_world):
    report, probe = quick_probe
    photos = load_world(probe_world).photos("test")
    images = [Image.open(p.path) for p in photos]
    predicted = probe.predict(images)
    assert all(set(p) == {"object", "colour", "scene"} for p in predicted)
    colour_hits = np.mean([p["colour"] == ph.triple.colour for p, ph in zip(predicted, photos)])
    scores = probe.score(images, [ph.triple.caption for ph in photos])
    assert scores["colour"] == pytest.approx(colour_hits) == pytest.approx(report.accuracy["colour"], abs=1e-4)
    assert scores["counted_scene"] == len(photos)


def test_score_counts_only_what_a_caption_names(quick_probe, probe_world):
    _, probe = quick_probe
    photo = load_world(probe_world).photos("test")[0]
    scores = probe.score([Image.open(photo.path)], [f"a {photo.triple.colour} thing"])
    assert scores["counted_colour"] == 1 and scores["counted_object"] == 0
    assert np.isnan(scores["object"]) and np.isnan(scores["all"])


def test_features_have_a_fixed_width_and_separate_colours(quick_probe):
    from photodialog.data.synth.render import render_photo

    _, probe = quick_probe
    reds = [render_photo(Triple("ball", "red", "park"), np.random.default_rng(k), 32) for k in range(6)]
    blues = [render_photo(Triple("ball", "blue", "park"), np.random.default_rng(k), 32) for k in range(6)]
    red, blue = probe.features(reds), probe.features(blues)
    assert red.shape == (6, probe.config.feature_dim) and red.dtype == np.float32
    within = np.linalg.norm(red - red.mean(0), axis=1).mean()
    between = np.linalg.norm(red.mean(0) - blue.mean(0))
    assert between > within
    assert probe.features([]).shape == (0, probe.config.feature_dim)


def test_any_image_size_and_mode_is_accepted(quick_probe):
    _, probe = quick_probe
    images = [Image.new("L", (64, 64), 128), Image.new("RGBA", (17, 23)), Image.new("RGB", (32, 32))]
    assert len(probe.predict(images)) == 3


def test_training_is_deterministic_for_a_seed(small_world, tmp_path):
    import torch

    state_before = torch.random.get_rng_state()
    a = train_probe(small_world, out_dir=tmp_path / "a", epochs=1, progress=False)
    b = train_probe(small_world, out_dir=tmp_path / "b", epochs=1, progress=False)
    c = train_probe(small_world, out_dir=tmp_path / "c", epochs=1, seed=1, progress=False)
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in "abc"]
    assert weights[0] == weights[1] != weights[2]
    assert a.train_loss == b.train_loss
    assert torch.equal(torch.random.get_rng_state(), state_before)  # the caller's RNG is untouched


def test_load_finds_the_probe_in_a_world_folder_and_explains_a_missing_one(tmp_path):
    from photodialog.data.synth import write_world

    world = write_world(tmp_path / "world", dialogues=20, image_size=16, progress=False)
    with pytest.raises(DataError, match="photodialog data probe"):
        Probe.load(world.root)
    train_probe(world.root, epochs=1, image_size=16, progress=False)  # default place: WORLD/probe
    assert (world.root / "probe" / "model.safetensors").is_file()
    assert Probe.load(world.root).config.objects == list(world.objects)


def test_augment_keeps_shape_and_range_and_changes_images():
    import torch

    x = torch.rand(8, 3, 32, 32)
    y = augment(x.clone(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert not torch.allclose(x, y)
    z = augment(x.clone(), torch.Generator().manual_seed(0))
    assert torch.equal(y, z)


@pytest.mark.slow
def test_default_probe_reads_the_default_world_at_95_percent(tmp_path):
    """The acceptance bar: every head >= 95 % on test, also on blurred and held-out photos."""
    from photodialog.data.synth import write_world

    write_world(tmp_path / "world", progress=False)
    report = train_probe(tmp_path / "world", progress=False)
    for scores in (report.accuracy, report.held_out_accuracy, report.blurred_accuracy):
        for kind in CHANCE:
            assert scores[kind] >= 0.95, (kind, report)


def test_blurred_photos_of_a_quick_probe_keep_colour(quick_probe, probe_world):
    _, probe = quick_probe
    photos = load_world(probe_world).photos("test")
    blurred = [Image.open(p.path).filter(ImageFilter.GaussianBlur(1.0)) for p in photos]
    assert probe.score(blurred, [p.triple.as_dict() for p in photos])["colour"] >= 2 * CHANCE["colour"]


def test_a_corrupt_probe_is_a_data_error(quick_probe, tmp_path):
    import shutil

    report, _ = quick_probe
    shutil.copytree(report.out_dir, tmp_path / "probe")
    (tmp_path / "probe" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(DataError, match="retrain"):
        Probe.load(tmp_path / "probe")

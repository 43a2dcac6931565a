"""IS and FID through torch-fidelity, offline: a tiny registered extractor, and the unavailable paths."""

import numpy as np
import pytest
import torch
from PIL import Image

from photodialog.errors import DataError
from photodialog.evaluation import image_metrics
from photodialog.evaluation.image_metrics import (
    SquareImageDataset,
    fidelity_metric_set,
    fidelity_scores,
    inception_weights_problem,
    no_downloads,
    to_square_tensor,
)
from photodialog.evaluation.metrics import SeedResult

from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY


def _scores(generated, reference, extractor, **kwargs):
    return fidelity_scores(generated, reference, inception_weights=None, feature_extractor=extractor, **kwargs)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(tiny_extractor, random_photos):
    photos = random_photos(40, seed=1)
    same = _scores(photos, photos, tiny_extractor)
    shifted = _scores(photos, random_photos(40, seed=1, shift=60), tiny_extractor)
    other = _scores(photos, random_photos(40, seed=2), tiny_extractor)
    assert same["available"] and same["unavailable"] == {}
    assert abs(same["fid"]) < 1e-6
    # Another sample of the same distribution is close; a brightened one is far.
    assert shifted["fid"] > 10 * other["fid"] > 0


def test_inception_score_is_between_one_and_the_number_of_classes(tiny_extractor, random_photos):
    scores = _scores(random_photos(40), random_photos(10, seed=3), tiny_extractor, isc_splits=4)
    assert 1.0 <= scores["is_mean"] <= FEATURE_EXTRACTORS_REGISTRY[tiny_extractor].NUM_CLASSES
    assert scores["is_std"] >= 0.0
    assert scores["isc_splits"] == 4
    # One photo repeated: every prediction is the same, so p(y|x) = p(y) and IS is exactly 1.
    repeated = _scores(random_photos(1) * 12, random_photos(10), tiny_extractor, isc_splits=3)
    assert repeated["is_mean"] == pytest.approx(1.0)


def test_too_few_photos_for_the_splits_leave_is_unavailable_and_fid_computed(tiny_extractor, random_photos):
    scores = _scores(random_photos(4), random_photos(6), tiny_extractor, isc_splits=10)
    assert scores["is_mean"] is None and "20" in scores["unavailable"]["is"]["reason"]
    assert np.isfinite(scores["fid"])


def test_folders_with_mixed_sizes_and_a_corrupt_file(tmp_path, tiny_extractor, random_photos):
    generated, reference = tmp_path / "generated", tmp_path / "reference"
    generated.mkdir()
    reference.mkdir()
    for i, photo in enumerate(random_photos(12, size=(32, 32))):
        photo.save(generated / f"{i:03d}.png")
    for i, photo in enumerate(random_photos(12, size=(48, 36), seed=5)):
        photo.save(reference / f"{i:03d}.jpg")
    (reference / "broken.png").write_bytes(b"not an image at all")
    (reference / "notes.txt").write_text("ignored: not an image suffix")
    scores = _scores(generated, reference, tiny_extractor)
    assert scores["available"]
    assert scores["num_generated"] == 12 and scores["num_reference"] == 12
    assert scores["skipped_reference"] == 1 and "broken.png" in scores["skipped"][0]
    assert scores["image_size"] == 32  # the generated photos' shorter side


def test_a_truncated_jpeg_is_skipped_and_counted_before_torch_fidelity_runs(tmp_path, tiny_extractor, random_photos):
    reference = tmp_path / "reference"
    reference.mkdir()
    for i, photo in enumerate(random_photos(4, size=(48, 48), seed=6)):
        photo.save(reference / f"{i:03d}.jpg", quality=95)
    whole = (reference / "000.jpg").read_bytes()
    (reference / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # a download cut short
    with Image.open(reference / "cut.jpg") as cut:
        cut.verify()  # the header check alone passes it: only a full decode finds the truncation
    scores = _scores(random_photos(6), reference, tiny_extractor)
    assert scores["available"] and scores["num_reference"] == 4
    assert scores["skipped_reference"] == 1
    assert "cut.jpg" in scores["skipped"][0] and "truncated" in scores["skipped"][0]


def test_photos_are_read_upright_and_on_white_as_everywhere_else(tmp_path):
    # Stored 40 x 20, red | blue halves, with EXIF orientation 6 (shown turned 90 degrees): upright it
    # is 20 x 40 with one colour above the other, so the centre square's rows are uniform, not its columns.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = tmp_path / "sideways.png"
    Image.fromarray(pixels).save(sideways, exif=exif)
    upright = SquareImageDataset([sideways], 20)[0].int()
    assert upright.shape == (3, 20, 20)
    assert (upright[:, 2, 2] - upright[:, 2, 17]).abs().max() < 10  # along a row: one colour
    assert (upright[:, 2, 2] - upright[:, 17, 2]).abs().max() > 200  # down a column: red, then blue
    transparent = tmp_path / "transparent.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(transparent)
    assert bool((SquareImageDataset([transparent], 4)[0] == 255).all())  # on white, not PIL's black


def test_reference_features_are_computed_once_with_a_cache_folder(tmp_path, monkeypatch, tiny_extractor, random_photos):
    generated, reference = random_photos(6, seed=1), random_photos(5, seed=2)
    reference_reads = []
    read = SquareImageDataset.__getitem__

    def counting_read(dataset, index):
        if len(dataset) == len(reference):
            reference_reads.append(index)
        return read(dataset, index)

    monkeypatch.setattr(SquareImageDataset, "__getitem__", counting_read)
    uncached = _scores(generated, reference, tiny_extractor)
    assert sorted(set(reference_reads)) == list(range(len(reference)))
    cache = tmp_path / "fid-cache"
    first = _scores(generated, reference, tiny_extractor, reference_cache=cache)
    reference_reads.clear()
    second = _scores(random_photos(6, seed=3), reference, tiny_extractor, reference_cache=cache)
    assert reference_reads == []  # not even the first photo: the features come from the cache
    assert first["fid"] == pytest.approx(uncached["fid"], rel=1e-6)
    assert second["fid"] == pytest.approx(_scores(random_photos(6, seed=3), reference, tiny_extractor)["fid"], rel=1e-6)
    assert any(cache.iterdir())


def test_resize_and_centre_crop_keep_the_middle():
    # 60 x 20: red | green | blue thirds. Shorter side -> 10 gives 30 x 10; the centre 10 x 10 is green.
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:40, 1] = 255
    pixels[:, 40:, 2] = 255
    tensor = to_square_tensor(Image.fromarray(pixels), 10)
    assert tensor.shape == (3, 10, 10) and tensor.dtype == torch.uint8
    centre = tensor[:, 2:8, 3:7].float().mean(dim=(1, 2))
    assert centre[1] > 250 and centre[0] < 5 and centre[2] < 5


def test_too_few_reference_photos_leaves_is_and_marks_fid_unavailable(tiny_extractor, random_photos):
    scores = _scores(random_photos(8), random_photos(1), tiny_extractor, isc_splits=4)
    assert scores["available"] and scores["fid"] is None
    assert "reference" in scores["unavailable"]["fid"]["reason"]
    seed = SeedResult(0).add(fidelity_metric_set(scores))
    assert "is" in seed.metrics and "is_split_std" in seed.metrics
    assert "fid" in seed.unavailable and "fid" not in seed.metrics


def test_no_generated_images_is_unavailable(tiny_extractor, random_photos):
    scores = _scores([], random_photos(4), tiny_extractor)
    assert scores == {"available": False, "reason": "no generated images to score"}


def test_without_weights_nothing_is_built_or_downloaded(monkeypatch, random_photos):
    def fail(*args, **kwargs):
        raise AssertionError("torch-fidelity must not run without weights")

    monkeypatch.setattr(image_metrics, "_run_torch_fidelity", fail)
    scores = fidelity_scores(random_photos(4), random_photos(4), inception_weights=None)
    assert scores["available"] is False
    assert "never downloads" in scores["reason"]
    assert scores["fix"] == image_metrics.WEIGHTS_FIX
    assert "--inception-weights" in scores["fix"] and image_metrics.INCEPTION_WEIGHTS_FILE in scores["fix"]
    seed = SeedResult(0).add(fidelity_metric_set(scores))
    assert set(seed.unavailable) == {"is", "fid"} and seed.unavailable["fid"]["fix"] == scores["fix"]


def test_unusable_weights_files_are_reported(tmp_path):
    assert "not found" in inception_weights_problem(tmp_path / "missing.pth")
    text_file = tmp_path / "text.pth"
    text_file.write_text("hello")
    assert "cannot read" in inception_weights_problem(text_file)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 4)}, wrong)
    assert "not torch-fidelity's Inception" in inception_weights_problem(wrong)
    right_shape = tmp_path / "right.pth"
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, right_shape)
    assert inception_weights_problem(right_shape) is None
    scores = fidelity_scores([], [], inception_weights=wrong)
    assert scores["available"] is False and "wrong.pth" in scores["reason"]


def test_other_builtin_extractors_also_need_a_local_file(random_photos):
    scores = fidelity_scores(
        random_photos(2), random_photos(2), inception_weights=None, feature_extractor="clip-vit-b-32"
    )
    assert scores["available"] is False and "local weights file" in scores["reason"]


def test_an_image_that_cannot_be_decoded_is_named(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png"):
        SquareImageDataset([broken], 8)[0]


def test_no_downloads_refuses_at_once_and_restores():
    import torch_fidelity.feature_extractor_inceptionv3 as inception_module

    original = inception_module.load_state_dict_from_url
    with no_downloads():
        with pytest.raises(RuntimeError, match="does not download"):
            inception_module.load_state_dict_from_url("https://example.invalid/weights.pth")
        with pytest.raises(RuntimeError):
            torch.hub.download_url_to_file("https://example.invalid/x", "/nonexistent")
    assert inception_module.load_state_dict_from_url is original


@pytest.mark.slow
def test_real_inception_architecture_runs_from_a_local_weights_file(tmp_path, random_photos):
    """The default path end to end, with randomly initialised Inception weights saved locally."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as inception_module

    torch.manual_seed(0)
    with mock.patch.object(inception_module, "load_state_dict_from_url", return_value={}), mock.patch.object(
        inception_module.FeatureExtractorInceptionV3, "load_state_dict"
    ):
        model = inception_module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / image_metrics.INCEPTION_WEIGHTS_FILE
    torch.save(model.state_dict(), weights)
    del model
    photos = random_photos(6, size=(64, 64))
    scores = fidelity_scores(photos, photos, inception_weights=weights, isc_splits=2, batch_size=6)
    assert scores["available"] and scores["feature_extractor"] == "inception-v3-compat"
    # Random weights predict nearly the same class distribution for every photo: IS ~ 1 (round-off allowed).
    assert 1.0 - 1e-9 <= scores["is_mean"] <= 1008
    assert abs(scores["fid"]) < 1e-2

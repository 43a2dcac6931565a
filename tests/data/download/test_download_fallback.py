"""Redrawing photos that could not be fetched, with a tiny random Stable Diffusion pipeline."""

from __future__ import annotations

import pytest
from download_helpers import GOOD_JPEG, photochat_dialogue, respond, serve_photochat, status
from PIL import Image

from photodialog.data.download import DownloadOptions, HttpLimits, ManifestEntry, download_dataset, load_manifest
from photodialog.data.download.fallback import FallbackOptions, MissingPhoto, draw_one, load_pipeline, photo_seed
from photodialog.data.layout import find_photo
from photodialog.errors import UserError

LIMITS = HttpLimits(timeout=0.5, retries=0, backoff=0.01)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def failing_world(server):
    """Two fetchable photos, two dead ones with captions, one dead one without a caption.

    The caption-less record is one the loader skips (a shared photo needs a caption), so its
    photo is never fetched, nor redrawn: training would never use it.
    """
    server.add("/p/a.jpg", respond(GOOD_JPEG))
    server.add("/p/b.jpg", respond(GOOD_JPEG))
    server.add("/p/page.jpg", respond(b"<html/>", "text/html"))
    server.add("/p/gone.jpg", status(410))
    records = [
        photochat_dialogue(0, server.url("/p/a.jpg"), "train/a", "Objects in the photo: Cup"),
        photochat_dialogue(1, server.url("/p/dead.jpg"), "train/dead", "Objects in the photo: Teapot, Kettle"),
        photochat_dialogue(
            2, server.url("/p/page.jpg"), "train/page", "The photo has your dog Rex. Objects in the photo: Dog"
        ),
        photochat_dialogue(3, server.url("/p/gone.jpg"), "train/nocaption", ""),
        photochat_dialogue(4, server.url("/p/b.jpg"), "train/b", "Objects in the photo: Plate"),
    ]
    return serve_photochat(server, {"train/train_00.json": records})


def run(out, base_url, model=None, **kwargs):
    fallback = FallbackOptions(model=model, steps=2, seed=7, device="cpu") if model else None
    return download_dataset(
        DownloadOptions(dataset="photochat", out=out, base_url=base_url, splits=["train"], workers=2,
                        limits=LIMITS, fallback=fallback, progress=False, **kwargs)
    )


def test_failed_photos_are_redrawn_from_their_captions(server, failing_world, tmp_path, tiny_sd_model):
    summary = run(tmp_path, failing_world, tiny_sd_model)
    manifest = load_manifest(tmp_path)

    assert (summary.ok, summary.generated, summary.failed) == (2, 2, 0)
    for stem, reason, caption in [
        ("train/dead", "http 404", "Objects in the photo: Teapot, Kettle"),
        ("train/page", "not an image: text/html", "The photo has your dog Rex. Objects in the photo: Dog"),
    ]:
        entry = manifest[stem]
        assert entry.status == "generated" and entry.reason == reason
        assert entry.model == tiny_sd_model and entry.prompt == caption
        path = find_photo(tmp_path, stem)
        assert path is not None and path.suffix == ".png" and (tmp_path / entry.path) == path
        with Image.open(path) as image:
            image.load()
            assert image.size == (32, 32)  # the tiny UNet's 16 latents x the VAE's factor 2
    # Its record is skipped by the loader (no caption to show or draw): not fetched at all.
    assert "train/nocaption" not in manifest and server.hits("/p/gone.jpg") == 0
    assert manifest["train/a"].status == "ok" and server.hits("/p/a.jpg") == 1
    assert not [p for p in tmp_path.rglob("*.part")]


def test_generated_photos_survive_a_resume(server, failing_world, tmp_path, tiny_sd_model):
    run(tmp_path, failing_world, tiny_sd_model)
    hits = server.total_hits()
    summary = run(tmp_path, failing_world)
    assert server.total_hits() == hits
    assert summary.generated == 2 and summary.kept == 4


def test_a_photo_is_drawn_the_same_whatever_else_failed(tmp_path, tiny_sd_model):
    options = FallbackOptions(model=tiny_sd_model, steps=2, seed=3, device="cpu")
    pipeline = load_pipeline(options)
    photo = MissingPhoto(ManifestEntry(url="u", stem="train/x", status="failed", reason="http 404"), "a red cup")
    other = MissingPhoto(ManifestEntry(url="v", stem="train/y", status="failed", reason="timeout"), "a red cup")
    first = draw_one(pipeline, photo, tmp_path / "one", options)
    draw_one(pipeline, other, tmp_path / "two", options)  # another photo drawn first this time
    second = draw_one(pipeline, photo, tmp_path / "two", options)
    assert (tmp_path / "one" / first.path).read_bytes() == (tmp_path / "two" / second.path).read_bytes()
    assert photo_seed("train/x", 3) != photo_seed("train/y", 3)
    assert photo_seed("train/x", 3) != photo_seed("train/x", 4)
    # A fixed number, not just equal within this process: a seed from Python's hash() (salted
    # per process) would draw another photo on the next run.
    assert photo_seed("train/x", 3) == 246269571


def test_a_folder_that_is_not_a_pipeline_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="could not load the text-to-image pipeline"):
        load_pipeline(FallbackOptions(model=str(tmp_path), device="cpu"))

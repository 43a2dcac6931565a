"""What `data download` writes is what the project's loader reads: files, splits, photos."""

from __future__ import annotations

from download_helpers import GOOD_JPEG, dialogcc_dialogue, photochat_world, respond, serve_dialogcc

from photodialog.data.download import DownloadOptions, HttpLimits, download_dataset, load_manifest
from photodialog.data.layout import photo_stem
from photodialog.data.loading import load_dialogues

LIMITS = HttpLimits(timeout=0.3, retries=1, backoff=0.01, max_bytes=100_000)


def download(dataset, out, base_url):
    return download_dataset(
        DownloadOptions(dataset=dataset, out=out, base_url=base_url, workers=4, limits=LIMITS, progress=False)
    )


def loaded_photos(root, split):
    return [photo for d in load_dialogues(root, split) for turn in d.turns for photo in turn.photos]


def test_photochat_photos_are_found_by_the_loader(server, tmp_path):
    base_url, stems = photochat_world(server)
    download("photochat", tmp_path, base_url)
    manifest = load_manifest(tmp_path)
    photos = loaded_photos(tmp_path, "train") + loaded_photos(tmp_path, "dev") + loaded_photos(tmp_path, "test")
    assert len(photos) == len(stems)
    for photo in photos:
        entry = manifest[photo_stem(photo.photo_id, photo.url)]
        if entry.status == "ok":
            assert photo.path is not None and photo.path.endswith(entry.path)
        else:
            assert photo.path is None


def test_dialogcc_valid_is_dev_and_photos_are_found(server, tmp_path):
    server.add("/p/1.jpg", respond(GOOD_JPEG))
    shared = [[], [{"image_url": server.url("/p/1.jpg")}, {"image_url": server.url("/p/gone.jpg")}]]
    base = serve_dialogcc(server, {
        "train": [dialogcc_dialogue("bst:0", "train", [[]])],
        "valid": [dialogcc_dialogue("daily:7", "valid", shared)],
        "test": [dialogcc_dialogue("wow:3", "test", [[]])],
    })
    summary = download("dialogcc", tmp_path, base)
    assert (summary.ok, summary.failed) == (1, 1)
    photos = loaded_photos(tmp_path, "dev")
    assert [p.url for p in photos] == [server.url("/p/1.jpg"), server.url("/p/gone.jpg")]
    assert photos[0].path is not None and photos[1].path is None

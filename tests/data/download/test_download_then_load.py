"""What `data download` writes is what the project's loader reads: files, splits, photos."""

from __future__ import annotations

from download_helpers import (
    GOOD_JPEG,
    dialogcc_dialogue,
    photochat_dialogue,
    photochat_world,
    respond,
    serve_dialogcc,
    serve_photochat,
)

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


def test_urls_and_ids_with_stray_whitespace_are_saved_where_the_loader_looks(server, tmp_path):
    # Published fields sometimes carry a trailing newline or space; the loader strips them
    # before naming the file, so the download must too, or the photo is fetched and never found.
    server.add("/p/by-url.jpg", respond(GOOD_JPEG))
    server.add("/p/by-id.jpg", respond(GOOD_JPEG))
    records = [
        photochat_dialogue(0, f"  {server.url('/p/by-url.jpg')}\n", None, "Objects in the photo: Cup"),
        photochat_dialogue(1, server.url("/p/by-id.jpg"), " train/spaced \n", "Objects in the photo: Plate"),
    ]
    base = serve_photochat(server, {"train/train_00.json": records})
    summary = download("photochat", tmp_path, base)
    assert summary.ok == 2 and server.hits("/p/by-url.jpg") == 1
    photos = loaded_photos(tmp_path, "train")
    assert [p.url for p in photos] == [server.url("/p/by-url.jpg"), server.url("/p/by-id.jpg")]
    assert all(p.path is not None for p in photos)
    assert photos[1].path.endswith("photos/train/spaced.jpg")


def test_photos_of_records_the_loader_skips_are_not_fetched(server, tmp_path):
    server.add("/p/used.jpg", respond(GOOD_JPEG))
    server.add("/p/never-shared.jpg", respond(GOOD_JPEG))
    server.add("/p/broken-record.jpg", respond(GOOD_JPEG))
    never_shared = photochat_dialogue(1, server.url("/p/never-shared.jpg"), "train/never", "Objects: Cup")
    for message in never_shared["dialogue"]:
        message["share_photo"] = False  # the photo is in the record, but no message shows it
    broken = photochat_dialogue(2, server.url("/p/broken-record.jpg"), "train/broken", "Objects: Cup")
    del broken["dialogue"][0]["user_id"]  # the loader skips the whole record
    records = [photochat_dialogue(0, server.url("/p/used.jpg"), "train/used", "Objects: Cup"), never_shared, broken]
    summary = download("photochat", tmp_path, serve_photochat(server, {"train/train_00.json": records}))
    assert (summary.photos, summary.ok) == (1, 1)
    assert server.hits("/p/never-shared.jpg") == server.hits("/p/broken-record.jpg") == 0

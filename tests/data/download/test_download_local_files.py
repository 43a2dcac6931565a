"""The dialogue files come from elsewhere (a mirror, an unpinned Hub dataset): what a record says never
reaches a file of this machine. A record's photo URL is fetched only over http(s) (file://, ftp://,
data: are refused), and a photo_id never leaves the --open-images folder or the template's path. The
user's own folders given on the command line stay allowed. Only 127.0.0.1 is contacted."""

from __future__ import annotations

import filecmp

import pytest
from download_helpers import GOOD_JPEG, GOOD_PNG, dialogcc_dialogue, photochat_dialogue, respond, serve_dialogcc, serve_photochat

from photodialog.cli.main import main
from photodialog.data.download import DownloadOptions, HttpLimits, download_dataset, load_manifest
from photodialog.data.download.photo_sources import OpenImages, safe_photo_id
from photodialog.errors import UserError

LIMITS = HttpLimits(timeout=10.0, retries=0, backoff=0.01)
CAPTION = "Objects in the photo: Plant"


@pytest.fixture
def secret(tmp_path):
    """A private photo of the user's, outside any dataset folder."""
    path = tmp_path / "private" / "secret.png"
    path.parent.mkdir()
    path.write_bytes(GOOD_PNG)
    return path


def copies_of(secret, out) -> list:
    return [p for p in (out / "photos").rglob("*") if p.is_file() and filecmp.cmp(p, secret, shallow=False)]


def test_a_record_url_other_than_http_is_never_fetched(server, tmp_path, secret):
    server.add("/p/ok.jpg", respond(GOOD_JPEG))
    records = [photochat_dialogue(1, secret.as_uri(), None, CAPTION),
               photochat_dialogue(2, f"FILE://{secret}", None, CAPTION),
               photochat_dialogue(3, "data:image/png;base64,iVBORw0KGgo=", None, CAPTION),
               photochat_dialogue(4, server.url("/p/ok.jpg"), None, CAPTION)]
    base = serve_photochat(server, {"train/train_00.json": records})
    out = tmp_path / "data"
    download_dataset(DownloadOptions(dataset="photochat", out=out, base_url=base, splits=["train"], workers=2,
                                     limits=LIMITS, progress=False))
    manifest = load_manifest(out)
    by_url = {entry.url: entry for entry in manifest.values()}
    assert by_url[server.url("/p/ok.jpg")].status == "ok"  # the web photo is fetched as before
    for record in records[:3]:
        entry = by_url[record["photo_url"]]
        assert entry.status == "failed" and "not an http(s) URL" in entry.reason and entry.attempts == 0
    assert not copies_of(secret, out)


def test_a_dialogcc_image_url_on_the_local_disk_is_never_fetched(server, tmp_path, secret):
    record = dialogcc_dialogue("d1", "train", [[], [{"image_url": secret.as_uri()}]])
    base = serve_dialogcc(server, {"train": [record]})
    out = tmp_path / "data"
    download_dataset(DownloadOptions(dataset="dialogcc", out=out, base_url=base, splits=["train"], workers=2,
                                     limits=LIMITS, progress=False))
    assert [e.status for e in load_manifest(out).values()] == ["failed"]
    assert not copies_of(secret, out)


@pytest.mark.parametrize("photo_id, plain", [
    ("train/624e5f6dd7f64d89", "train/624e5f6dd7f64d89"), ("624e5f6dd7f64d89", "624e5f6dd7f64d89"),
    ("../../private/secret", None), ("train/../../secret", None), ("/etc/passwd", None), ("train\\..\\x", None),
    (".hidden", None), ("train/x?y=1", None), ("train/%2e%2e/x", None), ("", None),
])
def test_only_plain_photo_ids_are_used(photo_id, plain):
    assert safe_photo_id(photo_id) == plain


@pytest.mark.parametrize("kind", ["folder", "template"])
def test_a_photo_id_never_leaves_the_open_images_folder_or_template(server, tmp_path, secret, kind):
    open_images = tmp_path / "openimages"
    open_images.mkdir()
    escape = "../" * 12 + str(secret.with_suffix("")).lstrip("/")
    records = [photochat_dialogue(1, server.url("/p/gone.jpg"), escape, CAPTION),
               photochat_dialogue(2, server.url("/p/gone.jpg"), "../private/secret", CAPTION)]
    base = serve_photochat(server, {"train/train_00.json": records})
    out = tmp_path / "data"
    location = str(open_images) if kind == "folder" else "file://" + str(open_images) + "/{photo_id}.png"
    download_dataset(DownloadOptions(dataset="photochat", out=out, base_url=base, splits=["train"], workers=2,
                                     limits=LIMITS, progress=False, open_images=location))
    for entry in load_manifest(out).values():
        assert entry.status == "failed"
        assert entry.tried[0] == {"source": "open_images", "reason": "the record's photo_id is not a plain Open Images id"}
    assert not copies_of(secret, out)


def test_the_users_own_open_images_folder_still_serves(server, tmp_path):
    open_images = tmp_path / "openimages" / "train"
    open_images.mkdir(parents=True)
    (open_images / "abc123.jpg").write_bytes(GOOD_JPEG)
    base = serve_photochat(server, {"train/train_00.json": [photochat_dialogue(1, server.url("/p/x.jpg"), "train/abc123", CAPTION)]})
    out = tmp_path / "data"
    download_dataset(DownloadOptions(dataset="photochat", out=out, base_url=base, splits=["train"], workers=2,
                                     limits=LIMITS, progress=False, open_images=str(tmp_path / "openimages")))
    entry = load_manifest(out)["train/abc123"]
    assert (entry.status, entry.source) == ("ok", "open_images")


@pytest.mark.parametrize("template, complaint", [
    ("{photo_id}{", "not a usable URL template"), ("http://h/{photo_id}/{other}", "no other"),
    ("http://h/{0}", "no other"), ("http://h/{photo_id.real}", "not a usable URL template"),
])
def test_a_malformed_open_images_template_is_a_message(template, complaint, tmp_path, capsys):
    with pytest.raises(UserError, match=complaint):
        OpenImages(template)
    code = main(["data", "download", "photochat", "--out", str(tmp_path / "d"), "--open-images", template,
                 "--base-url", "http://127.0.0.1:9", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "--open-images" in err

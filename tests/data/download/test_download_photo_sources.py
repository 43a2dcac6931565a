"""Photo sources tried in order (Open Images, URL, Hub mirror, generator), each failing in turn.

Everything is served from 127.0.0.1 or local folders: the Hub mirror is a stand-in (a local
folder, or ``huggingface_hub``'s listing and URL functions pointed at the local server); no
test reaches the internet.
"""

from __future__ import annotations

import json

import pytest
from download_helpers import (
    GOOD_JPEG,
    GOOD_PNG,
    dialogcc_dialogue,
    photochat_dialogue,
    respond,
    serve_dialogcc,
    serve_photochat,
    status,
)

from photodialog.cli.main import main
from photodialog.data.download import DownloadOptions, HttpLimits, download_dataset, load_manifest
from photodialog.data.download.fallback import FallbackOptions
from photodialog.data.layout import find_photo, photo_stem
from photodialog.data.loading import load_dialogues
from photodialog.errors import UserError

# Generous: every answer here is immediate, and a busy machine must not turn a served photo into a timeout.
LIMITS = HttpLimits(timeout=10.0, retries=0, backoff=0.01)
CAPTION = "Objects in the photo: Cup, Table"


@pytest.fixture
def chain_world(server, tmp_path):
    """Four PhotoChat photos, each served by the next source in the chain (the last by none but the generator).

    - ``oi``:  in the Open Images folder (its URL would work too: it must not be asked)
    - ``url``: not in Open Images, its URL works
    - ``hub``: not in Open Images, its URL is dead (404), the mirror has it
    - ``gen``: in none of them: only the generator can draw it
    """
    server.add("/p/oi.jpg", respond(GOOD_JPEG))
    server.add("/p/url.jpg", respond(GOOD_JPEG))
    server.add("/p/gen.jpg", status(410))
    records = [photochat_dialogue(i, server.url(f"/p/{name}.jpg"), f"train/{name}", CAPTION)
               for i, name in enumerate(["oi", "url", "hub", "gen"])]
    base = serve_photochat(server, {"train/train_00.json": records})
    open_images = tmp_path / "openimages" / "train"
    open_images.mkdir(parents=True)
    (open_images / "oi.jpg").write_bytes(GOOD_JPEG)
    mirror = tmp_path / "mirror" / "photos" / "train"
    mirror.mkdir(parents=True)
    (mirror / "hub.png").write_bytes(GOOD_PNG)
    return base, tmp_path / "openimages", tmp_path / "mirror"


def _run(out, base, dataset="photochat", **kwargs):
    return download_dataset(DownloadOptions(dataset=dataset, out=out, base_url=base, splits=["train"], workers=2,
                                            limits=LIMITS, progress=False, **kwargs))


def test_each_photo_served_by_the_first_source_that_has_it(server, chain_world, tmp_path, tiny_sd_model, one_torch_thread):
    base, open_images, mirror = chain_world
    out = tmp_path / "photochat"
    fallback = FallbackOptions(model=tiny_sd_model, steps=2, seed=0, device="cpu")
    summary = _run(out, base, open_images=str(open_images), photo_source=str(mirror), fallback=fallback)
    manifest = load_manifest(out)

    not_in_oi = {"source": "open_images", "reason": f"not in the Open Images folder {open_images}"}
    url_404 = {"source": "url", "reason": "http 404"}
    assert (manifest["train/oi"].status, manifest["train/oi"].source, manifest["train/oi"].tried) == ("ok", "open_images", None)
    assert server.hits("/p/oi.jpg") == 0  # served before its URL was asked
    assert (manifest["train/url"].source, manifest["train/url"].tried) == ("url", [not_in_oi])
    assert (manifest["train/hub"].status, manifest["train/hub"].source) == ("ok", "hub")
    assert manifest["train/hub"].tried == [not_in_oi, url_404]
    assert find_photo(out, "train/hub").suffix == ".png"
    gen = manifest["train/gen"]
    assert (gen.status, gen.source, gen.reason) == ("generated", "generator", "http 410")
    assert gen.tried == [not_in_oi, {"source": "url", "reason": "http 410"},
                         {"source": "hub", "reason": f"not in the mirror {mirror}"}]
    assert summary.served_by == {"open_images": 1, "url": 1, "hub": 1, "generator": 1}
    assert "served by: open_images 1, url 1, hub 1, generator 1" in summary.lines()
    # The manifest on disk says the same, one line per photo; the loader finds every photo.
    lines = [json.loads(line) for line in (out / "photos" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(line["source"] for line in lines) == ["generator", "hub", "open_images", "url"]
    photos = [p for d in load_dialogues(out, "train") for t in d.turns for p in t.photos]
    assert len(photos) == 4 and all(p.path for p in photos)


def test_a_resume_asks_no_source_again(server, chain_world, tmp_path):
    base, open_images, mirror = chain_world
    out = tmp_path / "photochat"
    _run(out, base, open_images=str(open_images), photo_source=str(mirror))
    hits = server.total_hits()
    first = load_manifest(out)
    summary = _run(out, base, open_images=str(open_images), photo_source=str(mirror))
    assert server.total_hits() == hits  # the dialogue file is kept; no photo is asked again
    assert load_manifest(out) == first and summary.failed == 1 and summary.kept == 3


def test_a_source_added_later_is_asked_for_failed_photos_only(server, chain_world, tmp_path):
    base, open_images, mirror = chain_world
    out = tmp_path / "photochat"
    first = _run(out, base)
    assert first.failed == 2 and load_manifest(out)["train/hub"].tried == [{"source": "url", "reason": "http 404"}]
    url_hits = server.hits("/p/url.jpg")
    second = _run(out, base, photo_source=str(mirror))
    manifest = load_manifest(out)
    assert (manifest["train/hub"].status, manifest["train/hub"].source) == ("ok", "hub")
    assert manifest["train/hub"].tried == [{"source": "url", "reason": "http 404"}]
    assert manifest["train/gen"].tried[-1]["source"] == "hub" and manifest["train/gen"].reason == "http 410"
    assert server.hits("/p/url.jpg") == url_hits and second.failed == 1


def test_open_images_url_template(server, chain_world, tmp_path):
    base, _, _ = chain_world
    server.add("/openimages/train/url.jpg", respond(GOOD_PNG, "image/png"))
    out = tmp_path / "photochat"
    _run(out, base, open_images=server.url("/openimages/{photo_id}.jpg"))
    manifest = load_manifest(out)
    assert (manifest["train/url"].source, manifest["train/url"].url) == ("open_images", server.url("/openimages/train/url.jpg"))
    assert server.hits("/p/url.jpg") == 0
    assert manifest["train/oi"].source == "url"
    assert manifest["train/oi"].tried == [{"source": "open_images", "reason": "http 404"}]
    assert manifest["train/oi"].url == server.url("/p/oi.jpg")


def test_hub_mirror_through_huggingface_hub(server, chain_world, tmp_path, monkeypatch):
    """The mirror as a Hub dataset: listed with HfApi.list_repo_files, fetched at hf_hub_url (here: 127.0.0.1)."""
    import huggingface_hub

    base, _, _ = chain_world
    server.add("/hub/photos/train/hub.jpg", respond(GOOD_JPEG))
    asked = []

    def list_repo_files(self, repo_id, repo_type=None, revision=None):
        asked.append((repo_id, repo_type))
        return [".gitattributes", "README.md", "photos/train/hub.jpg"]

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_url",
                        lambda repo_id, filename, repo_type=None, revision=None: server.url(f"/hub/{filename}"))
    out = tmp_path / "photochat"
    summary = _run(out, base, photo_source="someone/photochat-photos")
    manifest = load_manifest(out)
    assert asked == [("someone/photochat-photos", "dataset")]
    assert (manifest["train/hub"].source, manifest["train/hub"].url) == ("hub", server.url("/hub/photos/train/hub.jpg"))
    assert manifest["train/gen"].tried[-1] == {"source": "hub", "reason": "not in the mirror someone/photochat-photos"}
    assert summary.served_by == {"url": 2, "hub": 1}


def test_an_unreachable_hub_mirror_is_a_message(server, chain_world, tmp_path, monkeypatch):
    import huggingface_hub

    def offline(self, *args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", offline)
    with pytest.raises(UserError, match="cannot list the Hub dataset.*no network"):
        _run(tmp_path / "photochat", chain_world[0], photo_source="someone/photos")


def test_dialogcc_chain_has_no_open_images(server, tmp_path, tiny_sd_model, one_torch_thread):
    good = server.add("/p/cc-good.jpg", respond(GOOD_JPEG))
    mirrored = server.url("/p/cc-mirrored.jpg")
    dead = server.url("/p/cc-dead.jpg")
    record = dialogcc_dialogue("d1", "train", [[], [{"image_url": good}, {"image_url": mirrored}], [{"image_url": dead}]])
    base = serve_dialogcc(server, {"train": [record], "valid": [], "test": []})
    mirror = tmp_path / "mirror"
    (mirror / "url").mkdir(parents=True)
    (mirror / f"{photo_stem(None, mirrored)}.jpg").write_bytes(GOOD_JPEG)
    with pytest.raises(UserError, match="--open-images is for PhotoChat"):
        _run(tmp_path / "cc", base, dataset="dialogcc", open_images=str(tmp_path))
    fallback = FallbackOptions(model=tiny_sd_model, steps=2, seed=0, device="cpu")
    summary = _run(tmp_path / "cc", base, dataset="dialogcc", photo_source=str(mirror), fallback=fallback)
    manifest = load_manifest(tmp_path / "cc")
    by_url = {url: manifest[photo_stem(None, url)] for url in (good, mirrored, dead)}
    assert by_url[good].source == "url" and by_url[good].tried is None
    assert by_url[mirrored].source == "hub" and by_url[mirrored].tried == [{"source": "url", "reason": "http 404"}]
    assert by_url[mirrored].url.startswith("file://")  # an ok line's url says where the file came from
    assert by_url[dead].source == "generator" and [a["source"] for a in by_url[dead].tried] == ["url", "hub"]
    assert summary.served_by == {"url": 1, "hub": 1, "generator": 1}


def test_cli_flags(server, chain_world, tmp_path, capsys):
    base, open_images, mirror = chain_world
    code = main(["data", "download", "photochat", "--out", str(tmp_path / "pc"), "--base-url", base, "--splits", "train",
                 "--timeout", "10", "--retries", "0", "--quiet", "--open-images", str(open_images),
                 "--photo-source", str(mirror)])
    assert code == 0
    assert "served by: open_images 1, url 1, hub 1" in capsys.readouterr().out
    code = main(["data", "download", "photochat", "--out", str(tmp_path / "pc2"), "--base-url", base,
                 "--open-images", str(tmp_path / "nowhere")])
    assert code == 2 and "is not a folder" in capsys.readouterr().err
    code = main(["data", "download", "photochat", "--out", str(tmp_path / "pc3"), "--base-url", base,
                 "--open-images", "https://example.org/images/"])
    assert code == 2 and "{photo_id}" in capsys.readouterr().err

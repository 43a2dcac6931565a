"""Dialogue files: published names and formats, --limit, resume, and fetch failures."""

from __future__ import annotations

import json

import pytest
from download_helpers import (
    dialogcc_dialogue,
    photochat_dialogue,
    respond,
    serve_dialogcc,
    serve_photochat,
)

from photodialog.data.download import HttpLimits, get_source
from photodialog.data.download.dialogue_files import fetch_dialogue_files, photo_refs
from photodialog.data.download.records import iter_file_records
from photodialog.data.layout import photo_stem
from photodialog.errors import DataError

LIMITS = HttpLimits(timeout=1, retries=1, backoff=0.01)
PHOTOCHAT = get_source("photochat")
DIALOGCC = get_source("dialogcc")


SERVED = ("train/train_00.json", "train/train_01.json", "train/train_02.json", "dev/dev_00.json", "test/test_00.json")


def photochat_files(per_file: int = 3) -> dict[str, list[dict]]:
    """Three dialogues in each of five files (the other published files are empty)."""
    files, number = {}, 0
    for name in SERVED:
        files[name] = []
        for _ in range(per_file):
            url, caption = f"http://photos.invalid/{number}.jpg", f"Objects in the photo: Cup {number}"
            files[name].append(photochat_dialogue(number, url, f"train/{number:016x}", caption))
            number += 1
    return files


def fetch(source, root, base_url, **kwargs):
    kwargs.setdefault("splits", ["train", "dev", "test"])
    return fetch_dialogue_files(source, root, base_url=base_url, limits=LIMITS, progress=False, **kwargs)


def test_photochat_files_land_where_the_layout_says_as_published(server, tmp_path):
    base = serve_photochat(server, photochat_files())
    files = fetch(PHOTOCHAT, tmp_path, base)
    assert len(files) == 25 and all(f.fetched for f in files)
    written = [p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*.json") if p.parent.name != "photos"]
    assert sorted(written) == sorted(remote.local_path for remote in PHOTOCHAT.files)
    served = json.dumps(photochat_files()["train/train_01.json"], indent=2).encode()
    assert (tmp_path / "train" / "train_01.json").read_bytes() == served  # byte for byte
    counts = {}
    for f in files:
        counts[f.split] = counts.get(f.split, 0) + f.records
    assert counts == {"train": 9, "dev": 3, "test": 3}


def test_limit_keeps_the_first_n_dialogues_per_split_and_stops_fetching(server, tmp_path):
    base = serve_photochat(server, photochat_files())
    files = fetch(PHOTOCHAT, tmp_path, base, limit=4)
    assert [(f.path.name, f.records) for f in files] == [
        ("train_00.json", 3), ("train_01.json", 1), ("dev_00.json", 3), ("dev_01.json", 0), ("test_00.json", 3),
        ("test_01.json", 0),
    ]
    assert server.hits("/photochat/train/train_02.json") == 0
    truncated = json.loads((tmp_path / "train" / "train_01.json").read_text())
    assert truncated == photochat_files()["train/train_01.json"][:1]  # still a JSON array


def test_photochat_photo_refs_follow_the_layout_stems(server, tmp_path):
    records = photochat_files()["train/train_00.json"]
    del records[1]["photo_id"]  # some published versions have none
    base = serve_photochat(server, {"train/train_00.json": records})
    refs = list(photo_refs(PHOTOCHAT, fetch(PHOTOCHAT, tmp_path, base, splits=["train"])))
    assert [r.stem for r in refs] == [
        photo_stem(records[0]["photo_id"], records[0]["photo_url"]),
        photo_stem(None, records[1]["photo_url"]),
        photo_stem(records[2]["photo_id"], records[2]["photo_url"]),
    ]
    assert refs[0].caption == "Objects in the photo: Cup 0" and refs[0].split == "train"


@pytest.mark.parametrize("as_lines", [False, True])
def test_dialogcc_keeps_valid_and_its_format(server, tmp_path, as_lines):
    photo = {"image_url": "http://cc3m.invalid/a.jpg"}
    splits = {
        name: [dialogcc_dialogue(f"{name}:{i}", name, [[], [photo], []]) for i in range(3)]
        for name in ("train", "valid", "test")
    }
    base = serve_dialogcc(server, splits, as_lines=as_lines)
    files = fetch(DIALOGCC, tmp_path, base, limit=2)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["test.json", "train.json", "valid.json"]
    assert {f.path.name: f.split for f in files} == {"train.json": "train", "valid.json": "dev", "test.json": "test"}
    text = (tmp_path / "valid.json").read_text()
    assert text.lstrip().startswith("[") is (not as_lines)
    assert list(iter_file_records(tmp_path / "valid.json")) == splits["valid"][:2]


def test_dialogcc_photo_refs_several_per_turn_with_captions(server, tmp_path):
    turn_photos = [
        [],
        [
            {"image_url": "http://cc3m.invalid/1.jpg"},
            {"image_url": "http://cc3m.invalid/2.jpg", "caption": "own caption"},
        ],
        [],
        [{"image_url": "http://cc3m.invalid/1.jpg"}],
    ]
    base = serve_dialogcc(server, {"train": [dialogcc_dialogue("bst:1", "train", turn_photos)]})
    files = fetch(DIALOGCC, tmp_path, base, splits=["train"])
    refs = list(photo_refs(DIALOGCC, files))
    assert [r.url.rsplit("/", 1)[1] for r in refs] == ["1.jpg", "2.jpg", "1.jpg"]
    assert refs[0].stem == refs[2].stem == photo_stem(None, "http://cc3m.invalid/1.jpg")
    assert refs[0].caption == "A red bicycle leaning on a wall." and refs[1].caption == "own caption"


def test_dialogcc_captions_per_image_when_the_description_is_a_list(server, tmp_path):
    images = [{"image_url": "http://a.invalid/1"}, {"image_url": "http://a.invalid/2"}]
    record = dialogcc_dialogue("bst:2", "train", [images])
    record["dialogue"][0]["description"] = ["first photo", "second photo"]
    base = serve_dialogcc(server, {"train": [record]})
    refs = list(photo_refs(DIALOGCC, fetch(DIALOGCC, tmp_path, base, splits=["train"])))
    assert [r.caption for r in refs] == ["first photo", "second photo"]


def test_a_second_run_reuses_the_files_unless_the_limit_changes(server, tmp_path):
    base = serve_photochat(server, photochat_files())
    fetch(PHOTOCHAT, tmp_path, base)
    hits = server.total_hits()
    again = fetch(PHOTOCHAT, tmp_path, base)
    assert server.total_hits() == hits and not any(f.fetched for f in again)
    assert sum(f.records for f in again) == 15

    fetch(PHOTOCHAT, tmp_path, base, limit=1)
    assert server.hits("/photochat/train/train_00.json") == 2
    fetch(PHOTOCHAT, tmp_path, base, limit=1, refetch=True)
    assert server.hits("/photochat/train/train_00.json") == 3


def test_base_url_from_the_environment(server, tmp_path, monkeypatch):
    base = serve_dialogcc(server, {"test": [dialogcc_dialogue("daily:1", "test", [[]])]})
    monkeypatch.setenv("PHOTODIALOG_DIALOGCC_BASE_URL", base)
    files = fetch(DIALOGCC, tmp_path, None, splits=["test"])
    assert files[0].url == f"{base}/test.json" and files[0].records == 1


def test_a_missing_dialogue_file_is_a_data_error_that_names_it(server, tmp_path):
    base = serve_photochat(server, {})
    server._server.routes.pop("/photochat/dev/dev_01.json")
    with pytest.raises(DataError, match=r"dev_01\.json.*http 404"):
        fetch(PHOTOCHAT, tmp_path, base)


def test_an_html_page_instead_of_a_file_is_a_data_error(server, tmp_path):
    server.add("/dialogcc/test.json", respond(b"<html>Sign in</html>", "text/html"))
    with pytest.raises(DataError, match="did not give a dialogue file"):
        fetch(DIALOGCC, tmp_path, server.url("/dialogcc"), splits=["test"])
    assert not (tmp_path / "test.json").exists()


def test_local_copies_via_file_urls(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "test.json").write_text(json.dumps([dialogcc_dialogue("wow:1", "test", [[]])]))
    files = fetch(DIALOGCC, tmp_path / "out", mirror.as_uri(), splits=["test"])
    assert files[0].records == 1 and (tmp_path / "out" / "test.json").is_file()


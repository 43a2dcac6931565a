"""The photo fetcher end to end against a local server: files, manifest, resume, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from download_helpers import (
    EXPECTED_OK,
    EXPECTED_REASONS,
    GOOD_JPEG,
    GOOD_PNG,
    image_bytes,
    photo_hits,
    photochat_world,
    respond,
    slow,
)
from PIL import Image

from photodialog.data.download import DownloadOptions, HttpLimits, download_dataset, load_manifest
from photodialog.data.download.manifest import manifest_path
from photodialog.data.download.photo_fetch import fetch_photos, plan_photos
from photodialog.data.download.sources import PhotoRef
from photodialog.data.layout import find_photo

LIMITS = HttpLimits(timeout=0.3, retries=1, backoff=0.01, max_bytes=100_000)


def options(out: Path, base_url: str, **overrides) -> DownloadOptions:
    settings = dict(dataset="photochat", out=out, base_url=base_url, workers=4, limits=LIMITS, progress=False)
    settings.update(overrides)
    return DownloadOptions(**settings)


def part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def world(server):
    base_url, stems = photochat_world(server)
    return base_url, stems


def test_every_kind_of_url_ends_as_expected(server, world, tmp_path):
    base_url, stems = world
    summary = download_dataset(options(tmp_path, base_url))
    manifest = load_manifest(tmp_path)

    for kind, reason in EXPECTED_REASONS.items():
        entry = manifest[stems[kind]]
        assert (entry.status, entry.reason) == ("failed", reason), kind
        assert entry.path is None and find_photo(tmp_path, stems[kind]) is None
    for kind in EXPECTED_OK | {"jpeg_again", "no_id", "dev", "test"}:
        entry = manifest[stems[kind]]
        assert entry.status == "ok", (kind, entry.reason)
        path = tmp_path / entry.path
        assert path == find_photo(tmp_path, stems[kind]) and path.stat().st_size == entry.bytes
        with Image.open(path) as image:
            image.load()

    assert summary.photos == len(stems) == summary.ok + summary.failed
    assert summary.failed_by_reason == {reason: 1 for reason in EXPECTED_REASONS.values()}
    assert part_files(tmp_path) == []


def test_manifest_records_attempts_bytes_and_formats(server, world, tmp_path):
    base_url, stems = world
    download_dataset(options(tmp_path, base_url))
    manifest = load_manifest(tmp_path)
    lines = manifest_path(tmp_path).read_text().splitlines()
    assert len(lines) == len(stems)  # one line per photo
    assert {"url", "stem", "path", "status", "reason", "bytes", "attempts"} <= set(json.loads(lines[0]))

    assert manifest[stems["flaky"]].attempts == 2  # 503, then 200
    assert manifest[stems["ratelimited"]].attempts == 2  # 429, then 200
    assert manifest[stems["slow"]].attempts == 2  # timed out twice
    assert manifest[stems["missing"]].attempts == 1  # 404 is not retried
    assert manifest[stems["forbidden"]].attempts == 1
    assert manifest[stems["jpeg"]].bytes == len(GOOD_JPEG)
    assert manifest[stems["jpeg"]].path == "photos/train/jpeg.jpg"
    assert manifest[stems["png"]].path.endswith(".png")
    assert manifest[stems["octet"]].path.endswith(".png")  # named by what Pillow found, not the URL
    assert manifest[stems["no_id"]].path.startswith("photos/url/")


def test_the_same_url_is_fetched_once(server, world, tmp_path):
    base_url, stems = world
    download_dataset(options(tmp_path, base_url))
    assert server.hits("/p/good.jpg") == 1
    again = find_photo(tmp_path, stems["jpeg_again"])
    assert again is not None and again.read_bytes() == GOOD_JPEG
    assert load_manifest(tmp_path)[stems["jpeg_again"]].attempts == 0


def test_a_second_run_fetches_nothing_and_retry_failed_asks_again(server, world, tmp_path):
    base_url, stems = world
    download_dataset(options(tmp_path, base_url))
    requests_after_first = server.total_hits()
    photos_after_first = photo_hits(server)

    second = download_dataset(options(tmp_path, base_url))
    assert server.total_hits() == requests_after_first  # neither photos nor dialogue files again
    assert second.fetched_now == 0
    assert second.kept == second.ok and second.failed_before == second.failed == len(EXPECTED_REASONS)

    third = download_dataset(options(tmp_path, base_url, retry_failed=True))
    assert server.hits("/p/missing.jpg") == 2 and server.hits("/p/good.jpg") == 1
    requests_per_failure = {kind: 1 for kind in EXPECTED_REASONS} | {"slow": 2}  # a timeout is retried once
    assert photo_hits(server) == photos_after_first + sum(requests_per_failure.values())
    assert third.failed == len(EXPECTED_REASONS)


def test_files_already_there_are_checked_not_trusted(server, world, tmp_path):
    base_url, stems = world
    good = tmp_path / "photos" / f"{stems['png']}.png"
    broken = tmp_path / "photos" / f"{stems['jpeg']}.jpg"
    good.parent.mkdir(parents=True)
    good.write_bytes(image_bytes("PNG", color=(1, 2, 3)))
    broken.write_bytes(GOOD_JPEG[: len(GOOD_JPEG) // 3])

    download_dataset(options(tmp_path, base_url))
    manifest = load_manifest(tmp_path)
    assert server.hits("/p/good.png") == 0 and manifest[stems["png"]].attempts == 0
    assert server.hits("/p/good.jpg") == 1 and broken.read_bytes() == GOOD_JPEG


def test_a_photo_deleted_after_download_is_fetched_again(server, world, tmp_path):
    base_url, stems = world
    download_dataset(options(tmp_path, base_url))
    find_photo(tmp_path, stems["png"]).unlink()
    download_dataset(options(tmp_path, base_url))
    assert server.hits("/p/good.png") == 2 and find_photo(tmp_path, stems["png"]).read_bytes() == GOOD_PNG


def test_parts_left_by_a_killed_run_are_removed(server, world, tmp_path):
    base_url, _ = world
    stale = tmp_path / "photos" / "train" / ".abc.1234.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a photo")
    with open(tmp_path / "photos" / "manifest.jsonl", "w") as handle:
        handle.write('{"url": "x", "stem": "train/torn", "sta')  # a line torn by kill -9
    download_dataset(options(tmp_path, base_url))
    assert not stale.exists() and part_files(tmp_path) == []
    assert "train/torn" not in load_manifest(tmp_path)


def test_ctrl_c_keeps_what_was_fetched(server, tmp_path):
    refs = []
    for index in range(12):
        url = server.add(f"/p/{index}.jpg", slow(0.05, respond(GOOD_JPEG)))
        refs.append(PhotoRef(url=url, stem=f"train/{index}", caption="x", split="train"))
    plan = plan_photos(refs, {}, tmp_path, retry_failed=False)
    seen = []

    def interrupt_after_three(entry):
        seen.append(entry)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_photos(plan, tmp_path, {}, LIMITS, workers=2, progress=False, on_result=interrupt_after_three)

    manifest = load_manifest(tmp_path)
    assert 3 <= len(manifest) < 12  # finished ones are kept, queued ones were dropped
    for stem, entry in manifest.items():
        assert entry.status == "ok" and find_photo(tmp_path, stem) is not None
    on_disk = [p for p in (tmp_path / "photos" / "train").iterdir()]
    assert len(on_disk) == len(manifest) and part_files(tmp_path) == []


def test_the_download_check_refuses_what_the_loader_refuses(tmp_path):
    from photodialog.data.download.images import ImageRejected, check_image
    from photodialog.data.photos import verify_photo
    from photodialog.errors import DataError

    path = tmp_path / "wide.jpg"
    path.write_bytes(image_bytes("JPEG", size=(24, 16)))  # 384 pixels
    assert check_image(path, max_pixels=384).format == "JPEG"
    # One limit for both: a photo kept by the download must never be one the loader rejects.
    with pytest.raises(ImageRejected) as rejected:
        check_image(path, max_pixels=383)
    assert rejected.value.reason == "too many pixels"
    with pytest.raises(DataError, match="over the limit of 383"):
        verify_photo(path, max_pixels=383)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and holds no pixels: cheap to write, and
    opening it says its size without decoding anything."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_100_megapixel_photo_is_refused_by_the_default_limit(tmp_path):
    # Over the loader's 64 MP but under PIL's own bomb error (179 MP): a check with PIL's limit
    # would let it through to a loader that then treats it as missing.
    from photodialog.data.download.images import ImageRejected, check_image

    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(10_000, 10_000))
    with pytest.raises(ImageRejected) as rejected:
        check_image(path)
    assert rejected.value.reason == "too many pixels"

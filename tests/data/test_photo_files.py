"""``load_photo``: RGB, fully decoded, upright, bounded; every failure a DataError naming the file."""

from __future__ import annotations

import pytest
from PIL import Image

from photodialog.data.photos import load_photo, verify_photo
from photodialog.errors import DataError

from .helpers import truncate_file, write_png


@pytest.mark.parametrize("mode", ["L", "P", "RGB", "CMYK"])
def test_any_mode_comes_back_rgb(mode, tmp_path):
    path = tmp_path / "photo.png" if mode != "CMYK" else tmp_path / "photo.jpg"
    Image.new(mode, (9, 7)).save(path)
    image = load_photo(path)
    assert image.mode == "RGB" and image.size == (9, 7)


def test_transparency_is_composited_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(path)
    assert load_photo(path).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (40, 20)).save(path, exif=exif)
    assert load_photo(path).size == (20, 40)
    assert verify_photo(path) == (40, 20)  # the stored size; verify does not rotate


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_truncated_file_is_detected(suffix, tmp_path):
    path = tmp_path / f"cut{suffix}"
    write_png(tmp_path / "full.png", size=(96, 96))
    Image.open(tmp_path / "full.png").save(path)
    truncate_file(path, keep=0.4)
    with pytest.raises(DataError, match=rf"cut\{suffix}.*(truncated|corrupt)"):
        load_photo(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "page.jpg"
    path.write_text("<html>gone</html>")
    with pytest.raises(DataError, match=r"page\.jpg is not an image"):
        load_photo(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_photo(tmp_path / "nope.png")


def test_decompression_bomb_limit(tmp_path):
    path = write_png(tmp_path / "big.png", size=(100, 100))
    with pytest.raises(DataError, match=r"100x100 = 10,000 pixels, over the limit of 5,000"):
        load_photo(path, max_pixels=5_000)
    assert load_photo(path, max_pixels=10_000).size == (100, 100)

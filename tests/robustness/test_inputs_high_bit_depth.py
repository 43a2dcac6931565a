"""Kind 1 of issue 18: photos with more than 8 bits per pixel keep their content everywhere.

The issue's input is a 16-bit greyscale PNG ramp of 64 levels: Pillow's ``convert("RGB")``
clips it to 2 levels (98% white). Every path that decodes a photo (``load_photo``/``as_rgb``:
training's photo tensors, chat's saved copy, the perceptron's input, eval's square tensors,
``data check``) must give 64 levels, black to white. Variants: the other wide Pillow modes
(I;16 byte orders, I, F), transparency in 16-bit and 8-bit files, 16-bit RGB/LA, low bit
depths, CMYK, CIELab and premultiplied alpha.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from photodialog.cli.main import main
from photodialog.data.photos import as_rgb, load_photo, verify_photo

from .helpers import FAST_FLAGS, LEVELS, grey_levels, png_bytes, ramp16, write_ramp_png


def _assert_full_ramp(image, levels: int = LEVELS) -> None:
    """64 distinct greys, rising from black to white along each row."""
    row = np.asarray(image)[0, :, 0].astype(int)
    assert image.mode == "RGB"
    assert grey_levels(image) == levels, f"{grey_levels(image)} grey levels, expected {levels}"
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)


def test_the_issues_16_bit_ramp_keeps_its_64_levels(tmp_path):
    path = write_ramp_png(tmp_path / "ramp16.png")
    assert Image.open(path).mode == "I;16"  # what Pillow makes of it: the mode that used to be clipped
    image = load_photo(path)
    _assert_full_ramp(image)
    assert np.asarray(image)[0, 32, 0] in (129, 130)  # mid-grey stays mid-grey, not white


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B"])
def test_every_16_bit_byte_order_is_scaled(mode):
    byte_order = ">u2" if mode.endswith("B") else "<u2"
    image = Image.frombytes(mode, (LEVELS, 4), ramp16().astype(byte_order).tobytes())
    _assert_full_ramp(as_rgb(image))


@pytest.mark.parametrize("mode, values", [
    ("I", ramp16()),  # 32-bit integers holding a 16-bit range (a 16-bit TIFF read as I)
    ("I", ramp16() // 257),  # 32-bit integers holding an 8-bit range: kept as they are
    ("F", ramp16() / 65535.0),  # floats as fractions of full scale (a float TIFF)
    ("F", ramp16() / 65535.0 * 1000.0 - 500.0),  # floats of any range: stretched
])
def test_32_bit_integer_and_float_images_are_scaled(mode, values, tmp_path):
    array = values.astype(np.float32 if mode == "F" else np.int32)
    path = tmp_path / "wide.tif"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode == mode
    _assert_full_ramp(load_photo(path))


def test_nan_in_a_float_image_is_black_not_a_crash():
    values = (ramp16() / 65535.0).astype(np.float32)
    values[0, 1] = np.nan
    image = as_rgb(Image.fromarray(values))
    assert np.asarray(image)[0, 1, 0] == 0 and np.asarray(image)[0, -1, 0] == 255


def test_16_bit_transparency_is_white_and_the_rest_keeps_its_levels(tmp_path):
    path = tmp_path / "trns16.png"
    path.write_bytes(png_bytes(ramp16(), 0, 16, chunks=((b"tRNS", struct.pack(">H", 0)),)))  # black is transparent
    row = np.asarray(load_photo(path))[0, :, 0]
    assert row[0] == 255 and grey_levels(load_photo(path)) == LEVELS - 1 and row[1] == 4


@pytest.mark.parametrize("color_type, channels", [(2, 3), (4, 2), (6, 4)])
def test_16_bit_colour_and_alpha_pngs_keep_their_levels(color_type, channels, tmp_path):
    grey = ramp16()
    planes = [grey] * (channels - (1 if color_type in (4, 6) else 0))
    if color_type in (4, 6):
        planes.append(np.full_like(grey, 65535))  # opaque
    path = tmp_path / "deep.png"
    path.write_bytes(png_bytes(np.stack(planes, axis=-1), color_type, 16))
    _assert_full_ramp(load_photo(path))


@pytest.mark.parametrize("bit_depth", [1, 2, 4])
def test_low_bit_depth_greys_span_black_to_white(bit_depth, tmp_path):
    levels = 2 ** bit_depth
    path = tmp_path / "low.png"
    path.write_bytes(png_bytes(np.tile(np.arange(levels), (4, 1)), 0, bit_depth))
    _assert_full_ramp(load_photo(path), levels)


def test_8_bit_rgb_and_grey_transparency_is_composited_on_white(tmp_path):
    grey = ramp16() // 257
    for name, pixels, color_type, trns in [("grey", grey, 0, struct.pack(">H", 0)),
                                          ("rgb", np.stack([grey] * 3, -1), 2, struct.pack(">HHH", 0, 0, 0))]:
        path = tmp_path / f"{name}.png"
        path.write_bytes(png_bytes(pixels, color_type, 8, chunks=((b"tRNS", trns),)))
        assert np.asarray(load_photo(path))[0, 0].tolist() == [255, 255, 255], name


def test_palette_with_transparency_and_premultiplied_alpha(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette.putpixel((0, 0), 0)
    path = tmp_path / "p.png"
    palette.save(path, transparency=0)
    image = load_photo(path)
    assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((1, 1)) == (200, 10, 10)
    clear = Image.merge("La", [Image.new("L", (2, 2), 0), Image.new("L", (2, 2), 0)])
    assert as_rgb(clear).getpixel((0, 0)) == (255, 255, 255)  # fully transparent: white


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk_red_is_red(suffix, tmp_path):
    path = tmp_path / f"cmyk{suffix}"
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(path)
    assert load_photo(path).getpixel((0, 0)) == (255, 0, 0)


def test_cielab_mid_grey_is_grey():
    red, green, blue = as_rgb(Image.new("LAB", (2, 2), (128, 128, 128))).getpixel((0, 0))
    assert abs(red - green) <= 2 and abs(green - blue) <= 2 and 100 < red < 140


# ------------------------------------------------------------ every caller sees the same pixels


def test_training_photo_tensors_get_the_full_ramp(tmp_path):
    from photodialog.data.schema import Photo
    from photodialog.models.batch import PhotoTensors
    from photodialog.models.perceptron import photo_to_tensor

    path = write_ramp_png(tmp_path / "ramp16.png", height=LEVELS)  # square: no resize blending
    tensors = PhotoTensors(perceptron_transform=lambda image: photo_to_tensor(image, LEVELS))
    pixels = tensors.get(Photo("a ramp", path=str(path)), "context")
    assert pixels is not None and torch_unique_count(pixels[0, 0]) == LEVELS


def test_eval_square_tensors_get_the_full_ramp(tmp_path):
    from photodialog.evaluation.image_metrics import SquareImageDataset

    path = write_ramp_png(tmp_path / "ramp16.png", height=LEVELS)
    tensor = SquareImageDataset([path], LEVELS)[0]
    assert torch_unique_count(tensor[0]) == LEVELS and int(tensor.max()) == 255


def test_data_check_flags_nothing_and_loading_keeps_the_photo(tmp_path, capsys):
    from photodialog.data.loading import load_dialogues

    record = {"dialogue": [{"message": "my ramp", "share_photo": False, "user_id": 0},
                           {"message": "", "share_photo": True, "user_id": 0},
                           {"message": "so smooth", "share_photo": False, "user_id": 1}],
              "dialogue_id": 1, "photo_description": "Objects in the photo: Ramp", "photo_url": "",
              "photo_id": "train/000001"}
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "d.json").write_text(json.dumps([record]))
    photo = write_ramp_png(tmp_path / "photos" / "train" / "000001.png")
    assert main(["data", "check", str(tmp_path)]) == 0
    assert "no problems" in capsys.readouterr().out
    (dialogue,) = load_dialogues(tmp_path, check_photos=True)
    assert dialogue.turns[0].photos[0].path == str(photo.absolute())
    assert verify_photo(photo) == (LEVELS, 4)


def test_chat_saves_and_perceives_the_full_ramp(tiny_run, tmp_path, capsys, perceived):
    photo = write_ramp_png(tmp_path / "ramp16.png", height=LEVELS)
    out = tmp_path / "out"
    code = main(["chat", "--checkpoint", str(tiny_run), "--out", str(out), *FAST_FLAGS,
                 "--message", "look at this ramp", "--photo", str(photo), "--json"])
    assert code == 0, capsys.readouterr().err
    (copy,) = (out / "photos").glob("user-*.png")
    _assert_full_ramp(Image.open(copy).convert("RGB"))  # the saved copy is plain 8-bit RGB
    expected = perceived[0][0].preprocess([load_photo(photo)])
    assert any(row.equal(expected[0]) for _, pixels in perceived for row in pixels)
    assert float(expected.std()) > 0.5  # a ramp, not a white square


def torch_unique_count(tensor) -> int:
    import torch

    return int(torch.unique(tensor).numel())


def test_as_rgb_leaves_an_8_bit_rgb_image_alone():
    image = Image.open(io.BytesIO(png_bytes(np.stack([ramp16() // 257] * 3, -1), 2, 8)))
    image.load()
    assert as_rgb(image) is image


@pytest.mark.parametrize("mode", ["F", "I;16", "CMYK"])
def test_a_downloaded_tiff_is_stored_as_png_with_its_levels(mode, tmp_path):
    from photodialog.data.download.images import place_photo
    from photodialog.data.photos import inspect_photo

    if mode == "CMYK":
        image = Image.new("CMYK", (4, 4), (0, 255, 255, 0))
    elif mode == "F":
        image = Image.fromarray((ramp16() / 65535.0).astype(np.float32))
    else:
        image = Image.fromarray(ramp16().astype(np.uint16))
    tmp = tmp_path / "photos" / "train" / ".x.part"
    tmp.parent.mkdir(parents=True)
    image.save(tmp, format="TIFF")
    final = place_photo(tmp, tmp_path, "train/x", inspect_photo(tmp))
    assert final.suffix == ".png" and not tmp.exists()
    if mode == "CMYK":
        assert load_photo(final).getpixel((0, 0)) == (255, 0, 0)
    else:
        _assert_full_ramp(load_photo(final))

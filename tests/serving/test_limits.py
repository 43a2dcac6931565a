"""What a person may send: photo files and message text, each refusal with a clear message."""

from __future__ import annotations

import pytest

from photodialog.errors import UserError
from photodialog.models.generation_settings import GenerationSettings, check_settings
from photodialog.serving.limits import InputLimits, check_message, check_photo_file


def test_a_valid_photo_is_decoded_to_rgb(world_photo):
    image = check_photo_file(world_photo, InputLimits())
    assert image.mode == "RGB" and image.size[0] > 0


def test_a_non_image_names_the_file_as_the_person_knows_it(not_an_image):
    with pytest.raises(UserError) as caught:
        check_photo_file(not_an_image, InputLimits(), name="holiday.png")
    message = str(caught.value)
    assert "'holiday.png'" in message and "not an image" in message
    assert str(not_an_image) not in message  # no server path in what a visitor reads
    assert "data download" not in message  # advice for dataset files does not apply to uploads


def test_a_truncated_photo_is_refused(truncated_photo):
    with pytest.raises(UserError, match="truncated or corrupt"):
        check_photo_file(truncated_photo, InputLimits())


def test_too_many_bytes_is_refused_before_decoding(world_photo):
    with pytest.raises(UserError, match="too large"):
        check_photo_file(world_photo, InputLimits(max_photo_bytes=10))


def test_too_many_pixels_is_refused(world_photo):
    with pytest.raises(UserError, match="pixels"):
        check_photo_file(world_photo, InputLimits(max_photo_pixels=100))


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(UserError, match="not found"):
        check_photo_file(tmp_path / "nothing.jpg", InputLimits())
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="empty file"):
        check_photo_file(tmp_path / "empty.jpg", InputLimits())


def test_message_text_is_trimmed_and_typed_photo_markers_removed():
    assert check_message("  hi   [IMG] fake [/IMG] there ", 0, InputLimits()) == "hi fake there"


@pytest.mark.parametrize("text, photos, complaint", [
    ("", 0, "empty"), ("   ", 0, "empty"), ("x" * 3000, 0, "characters"), ("hi", 9, "at most"),
])
def test_bad_messages_are_refused(text, photos, complaint):
    with pytest.raises(UserError, match=complaint):
        check_message(text, photos, InputLimits())


def test_a_photo_alone_is_a_message():
    assert check_message("", 1, InputLimits()) == ""


@pytest.mark.parametrize("change, complaint", [
    ({"decoding": "nucleus"}, "unknown decoding"), ({"sampler": "plms"}, "unknown sampler"),
    ({"max_new_tokens": 0}, "max new tokens"), ({"diffusion_steps": 0}, "diffusion steps"),
    ({"decoding": "sample", "temperature": 0.0}, "temperature"), ({"top_p": 1.5}, "top-p"), ({"seed": -1}, "seed"),
    ({"decoding": "beam", "num_beams": 1}, "beam search needs at least 2 beams"),
])
def test_out_of_range_settings_are_refused(change, complaint):
    with pytest.raises(UserError, match=complaint):
        check_settings(GenerationSettings(**change))


def test_default_settings_pass():
    assert check_settings(GenerationSettings()) == GenerationSettings()

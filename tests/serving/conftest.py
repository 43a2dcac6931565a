"""Fixtures for the chat and web-page tests: the tiny checkpoint loaded once, photos good and bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from photodialog.models.generation_settings import GenerationSettings

from .helpers import DRAWN_CAPTION


@pytest.fixture(scope="session")
def tiny_system(tiny_run):
    from photodialog.cli.common import quiet_libraries
    from photodialog.system import load_system

    quiet_libraries()
    return load_system(tiny_run, device="cpu")


@pytest.fixture(scope="session")
def world_photos(tiny_world) -> list[Path]:
    return sorted((tiny_world / "photos" / "train").glob("*.png"))


@pytest.fixture
def world_photo(world_photos) -> Path:
    return world_photos[0]


@pytest.fixture
def not_an_image(tmp_path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("this is not a photo\n")
    return path


@pytest.fixture
def truncated_photo(tmp_path, world_photo) -> Path:
    data = world_photo.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def model_always_draws(monkeypatch):
    """Make every reply share a photo, drawn by the real diffusion model.

    A model trained for two steps rarely writes ``[IMG]``; the serving code must still be
    tested with photos in replies. The photo is drawn by the checkpoint's own generator with
    the reply's settings, reporting its steps like a real reply.
    """
    from photodialog.data.schema import photo_turn_text
    from photodialog.system import DialogueSystem

    original = DialogueSystem.reply

    def reply(self, history, speaker, settings=None, **kwargs):
        settings = settings or GenerationSettings()
        result = original(self, history, speaker, settings, **kwargs)
        if not result.captions:
            images = self.model.generator.generate([DRAWN_CAPTION], steps=settings.diffusion_steps, seed=settings.seed,
                                                   guidance_scale=settings.guidance_scale, progress=kwargs.get("on_diffusion_step"))
            result.text = f"{result.text} {photo_turn_text(DRAWN_CAPTION)}".strip()
            result.captions, result.photos = [DRAWN_CAPTION], images
        return result

    monkeypatch.setattr(DialogueSystem, "reply", reply)



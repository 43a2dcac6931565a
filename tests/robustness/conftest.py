"""Fixtures of the robustness tests (the tiny run and world come from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def perceived(monkeypatch) -> list:
    """Records the pixel batch of every call of the image perceptron."""
    from photodialog.models.perceptron import ImagePerceptron

    calls: list = []
    original = ImagePerceptron.forward

    def forward(self, pixel_values):
        calls.append((self, pixel_values.detach().clone()))
        return original(self, pixel_values)

    monkeypatch.setattr(ImagePerceptron, "forward", forward)
    return calls

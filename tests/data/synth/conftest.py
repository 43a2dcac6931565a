"""Fixtures of the synthetic-world tests: worlds written once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_world(tiny_world):
    """A 60-dialogue world at 32 px, seed 0 (the smallest that has every split).

    The session's ``tiny_world`` (tests/conftest.py) is exactly that world, so it is written
    once for every test folder. Shared: tests read it and write their outputs elsewhere.
    """
    return tiny_world


@pytest.fixture(scope="session")
def probe_world(tmp_path_factory):
    """A 300-dialogue world at 32 px: enough photos for a probe to learn something quickly."""
    from photodialog.data.synth import write_world

    path = tmp_path_factory.mktemp("synth") / "probe-world"
    write_world(path, dialogues=300, seed=1, image_size=32, progress=False)
    return path


@pytest.fixture(scope="session")
def read_split():
    """``read_split(root, split)``: every record of a split, in file order."""
    import json

    from photodialog.data.synth.world import _file_order

    def read(root, split):
        records = []
        for file in sorted((root / split).glob("*.json"), key=_file_order):
            records += json.loads(file.read_text(encoding="utf-8"))
        return records

    return read

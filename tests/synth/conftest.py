"""Fixtures of the synthetic-world tests: small worlds written once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A 60-dialogue world at 32 px (the smallest that has every split)."""
    from photodialog.data.synth import write_world

    path = tmp_path_factory.mktemp("synth") / "world"
    write_world(path, dialogues=60, seed=0, image_size=32, progress=False)
    return path


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

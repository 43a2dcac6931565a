"""Config keys that were removed: old run folders still load, new runs cannot set them."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from photodialog.config import RETIRED_KEYS, RunConfig, load_config, save_config
from photodialog.errors import ConfigError


def _set(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def test_a_config_saved_with_the_retired_keys_still_loads(tmp_path):
    """Earlier versions wrote these keys into every run's config.yaml (and its checkpoints')."""
    path = tmp_path / "config.yaml"
    save_config(RunConfig(), path)
    data = yaml.safe_load(path.read_text())
    for key in RETIRED_KEYS:
        _set(data, key, "data" if key.endswith("corpus") else 0)
    path.write_text(yaml.safe_dump(data))
    assert load_config(str(path)) == RunConfig()


@pytest.mark.parametrize("key", sorted(RETIRED_KEYS))
def test_retired_keys_are_not_fields_and_cannot_be_overridden(key):
    section, *_, name = key.split(".")
    owner = {"model": RunConfig().model.tiny, "data": RunConfig().data, "train": RunConfig().train}[section]
    assert name not in {f.name for f in dataclasses.fields(owner)}
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(None, [f"{key}=1"])


def test_a_number_in_exponent_form_is_read_as_a_number():
    from photodialog.config import load_config

    config = load_config("tiny-e2e", ["train.lr=1e-4", "model.snr_gamma=5e0"])
    assert config.train.lr == 1e-4 and config.model.snr_gamma == 5.0

"""The documented command that rebuilds the bundled tiny generator: its folder, its record, its refusals."""

from __future__ import annotations

import hashlib
import json

import pytest

from photodialog.config import load_config
from photodialog.errors import UserError
from photodialog.models.tiny_generator import BUNDLED_GENERATOR
from photodialog.training.tiny_generator import BUNDLED_STEPS, RECIPE, main, rebuild_bundled


def test_the_recipe_trains_as_long_as_the_shipped_generator_did():
    assert load_config(RECIPE).train.max_steps == BUNDLED_STEPS
    assert json.loads((BUNDLED_GENERATOR / "training.json").read_text())["steps"] == BUNDLED_STEPS


def test_a_short_rebuild_writes_a_stable_diffusion_folder_the_demo_recipes_can_start_from(tmp_path):
    from photodialog.models.tiny import save_tiny_diffusion

    out = tmp_path / "tiny-sd"
    record = rebuild_bundled(out, steps=2, progress=False)
    assert record["steps"] == 2 and json.loads((out / "training.json").read_text()) == record
    for name, digest in record["sha256"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    # the same layout and sizes as the shipped one: a demo recipe takes it as its diffusion_source
    sizes = load_config("tiny-finetune", [f"model.tiny.diffusion_source={out}"]).model.tiny
    save_tiny_diffusion(tmp_path / "base-sd", [], sizes, latent=True)
    assert (tmp_path / "base-sd" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    # two steps moved the weights away from the shipped ones
    assert record["sha256"] != json.loads((BUNDLED_GENERATOR / "training.json").read_text())["sha256"]


def test_nothing_of_the_users_is_overwritten(tmp_path, tiny_world, capsys):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "taken")])
    assert "exists" in capsys.readouterr().err
    with pytest.raises(UserError, match="not the default synthetic world"):
        rebuild_bundled(tmp_path / "new", world=tiny_world, steps=1, progress=False)
    assert not (tmp_path / "new").exists() and (tiny_world / "world.json").is_file()


@pytest.mark.slow
def test_the_documented_command_rebuilds_the_bundled_generator_bit_for_bit(tmp_path):
    """About 35 minutes of one CPU thread; the same bytes on the same torch version and CPU kind."""
    from photodialog.devices import made_elsewhere

    shipped = json.loads((BUNDLED_GENERATOR / "training.json").read_text())
    if reason := made_elsewhere(shipped):
        pytest.skip(f"the shipped generator cannot be rebuilt bit for bit here: {reason}")
    record = rebuild_bundled(tmp_path / "tiny-sd", progress=False)
    assert record["sha256"] == shipped["sha256"]

"""`photodialog bench generator`: a learning curve per setting, the shipped generator's scores, and the byte comparison."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def probed_world(tiny_world, tmp_path_factory):
    from photodialog.data.synth.probe import train_probe

    world = tmp_path_factory.mktemp("bench-generator") / "world"
    shutil.copytree(tiny_world, world)
    train_probe(world, epochs=2, threads=1, progress=False)
    return world


def test_a_sweep_entry_that_is_not_sampler_steps_guidance_is_named():
    from photodialog.bench.generator import parse_sweep

    assert parse_sweep("dpm:4:3") and parse_sweep("") == []
    with pytest.raises(ValueError, match="'dpm:4' is not SAMPLER:STEPS:GUIDANCE"):
        parse_sweep("dpm:4:3,dpm:4")


@pytest.mark.slow  # trains, draws and times photos: about a minute on 2 cores
def test_the_curve_the_shipped_generator_and_the_comparison_are_reported(probed_world, tmp_path):
    from photodialog.bench.generator import GeneratorBench, parse_sweep, run_generator_bench, summary_lines
    from photodialog.models.tiny_generator import BUNDLED_GENERATOR

    bench = GeneratorBench(world=probed_world, work=tmp_path / "runs", steps={"chosen": 2}, eval_every=1, settings=["chosen"],
                           overrides=["train.batch_size=8", "train.micro_batch_size=8", "train.warmup_steps=1"], progress=False,
                           grid=tmp_path / "grid.png", sweep=parse_sweep("dpm:2:3,ddim:3:1"))
    result = run_generator_bench(bench)
    chosen = result["settings"]["chosen"]
    assert [row["step"] for row in chosen["curve"]] == [1, 2]
    for row in [*chosen["curve"], result["bundled"]]:
        assert all(0 <= row[k] <= 100 for k in ("object", "colour", "scene", "all"))
    assert chosen["sampling"] == {k: v for k, v in chosen["ms_per_photo"].items() if not k.startswith("batch_")}
    assert chosen["ms_per_photo"]["batch_1"] > 0 and chosen["vae_reconstruction"]["object"] >= 0
    bundled = result["bundled"]
    assert bundled["folder"] == str(BUNDLED_GENERATOR) and bundled["ms_per_photo"]["batch_16"] > 0
    assert bundled["chosen_run_is_bundled"] is False  # two steps on a tiny world are not the shipped generator
    assert any("differs from it" in line for line in summary_lines(result))
    assert [(r["sampler"], r["diffusion_steps"], r["guidance_scale"]) for r in bundled["dev_sweep"]] == [("dpm", 2, 3.0), ("ddim", 3, 1.0)]
    from PIL import Image

    shown = len(bundled["grid"]["captions"])
    assert 0 < shown <= 40 and Image.open(tmp_path / "grid.png").size == (128 * min(shown, 10), 128 * -(-shown // 10))


def test_settings_none_scores_and_times_only_the_shipped_generator(probed_world, tmp_path):
    import json

    from photodialog.cli.main import main

    out = tmp_path / "shipped.json"
    assert main(["bench", "generator", "--settings", "none", "--world", str(probed_world), "--work", str(tmp_path / "w"),
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"] == {} and not (tmp_path / "w" / "runs").exists()  # nothing trained
    bundled = result["bundled"]
    assert "chosen_run_is_bundled" not in bundled and 0 <= bundled["object"] <= 100
    assert bundled["ms_per_photo"]["batch_1"] > 0 and bundled["ms_per_photo"]["batch_16"] > 0


def test_settings_none_without_the_shipped_generator_is_refused(tmp_path, capsys):
    from photodialog.cli.main import main

    assert main(["bench", "generator", "--settings", "none", "--no-bundled", "--work", str(tmp_path / "w")]) == 2
    assert "nothing to measure" in capsys.readouterr().err and not (tmp_path / "w").exists()


def test_a_rebuild_that_differs_says_whether_the_cpu_kind_explains_it():
    from photodialog.bench.generator import summary_lines

    bundled = {"steps": 8000, "folder": "tiny-sd", "object": 96.0, "colour": 98.5, "scene": 100.0, "all": 94.5,
               "held_out_object": 92.0, "held_out_all": 89.0, "chosen_run_is_bundled": False,
               "ms_per_photo": {"sampler": "dpm", "diffusion_steps": 4, "guidance_scale": 3.0, "batch_1": 45.0, "batch_16": 11.0}}
    result = {"world": "w", "test_photos": 200, "held_out_photos": 100, "settings": {}}
    other = "\n".join(summary_lines({**result, "bundled": {**bundled, "why_not_rebuildable_here": "its cpu was AMD EPYC"}}))
    same = "\n".join(summary_lines({**result, "bundled": {**bundled, "why_not_rebuildable_here": None}}))
    assert "(expected: its cpu was AMD EPYC" in other and "report it" in same


def test_a_record_says_where_its_bytes_can_be_made_again():
    from photodialog.devices import made_elsewhere, made_on

    here = made_on()
    assert made_elsewhere(here) is None
    assert "cpu was AMD EPYC-like" in made_elsewhere({**here, "cpu": "AMD EPYC-like"})
    assert "torch was not recorded" in made_elsewhere({**here, "torch": None})

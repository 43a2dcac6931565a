"""`photodialog data synth` and `photodialog data probe` through the real CLI entry point."""

from __future__ import annotations

import json

from photodialog.cli.main import main


def test_synth_writes_a_world_and_says_what_next(tmp_path, capsys):
    out = tmp_path / "w"
    code = main(["data", "synth", "--out", str(out), "--dialogues", "20", "--image-size", "16", "--quiet"])
    assert code == 0
    meta = json.loads((out / "world.json").read_text())
    assert meta["dialogues"] == 20 and meta["image_size"] == 16
    printed = capsys.readouterr().out
    assert "16 train / 2 dev / 2 test" in printed and "photodialog data probe" in printed


def test_synth_refuses_a_foreign_folder_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path), "--dialogues", "10", "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert not (tmp_path / "world.json").exists()


def test_bad_dialogue_count_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "w"), "--dialogues", "3", "--quiet"]) == 2
    assert "at least 10" in capsys.readouterr().err


def test_synth_leaves_the_colour_out_of_a_fraction_of_captions_and_refuses_a_bad_one(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["data", "synth", "--out", str(out), "--dialogues", "20", "--image-size", "16", "--omit-colour", "0.5", "--quiet"]) == 0
    assert json.loads((out / "world.json").read_text())["caption_colour_omitted"] == 0.5
    assert "50% of captions leave the colour out" in capsys.readouterr().out
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--dialogues", "20", "--omit-colour", "-0.1", "--quiet"]) == 2
    assert "--omit-colour is a fraction of captions, from 0 to 1" in capsys.readouterr().err
    assert not (tmp_path / "x" / "world.json").exists()


def test_probe_trains_and_prints_a_table(small_world, tmp_path, capsys):
    out = tmp_path / "probe"
    code = main(["data", "probe", str(small_world), "--epochs", "1", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "object" in printed and "held-out" in printed
    config = json.loads((out / "config.json").read_text())
    assert set(config["accuracy"]["test"]) >= {"object", "colour", "scene"}
    assert (out / "model.safetensors").is_file()


def test_probe_on_a_folder_that_is_not_a_world_exits_3(tmp_path, capsys):
    assert main(["data", "probe", str(tmp_path), "--quiet"]) == 3
    assert "photodialog data synth" in capsys.readouterr().err

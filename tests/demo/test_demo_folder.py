"""The demo writes only into a folder it made, one demo at a time, and resumes a world killed while written."""

from __future__ import annotations

import os

import pytest

from photodialog.cli.main import main
from photodialog.data.synth import writer
from photodialog.data.synth.writer import ensure_world
from photodialog.output_files import claim_folder, lock_folder


def test_a_folder_of_other_files_is_refused_and_kept(tmp_path, capsys):
    home = tmp_path / "home"
    (home / "report-files").mkdir(parents=True)
    (home / "report.md").write_text("# My quarterly report")
    (home / "report-files" / "figure1.txt").write_text("my figure")
    assert main(["demo", "--quick", "--out", str(home), "--no-progress"]) == 2
    assert "not made by `photodialog demo`" in capsys.readouterr().err
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == ["report-files", "report-files/figure1.txt",
                                                                                "report.md"]


def test_a_second_demo_on_one_folder_is_refused_naming_the_first(tmp_path, capsys):
    out = claim_folder(tmp_path / "demo-out", "demo")
    with lock_folder(out, "the demo folder"):  # a demo running there
        assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 2
        assert f"is being written by pid {os.getpid()}" in capsys.readouterr().err


def test_a_world_killed_while_written_is_rewritten_by_the_rerun(tmp_path, monkeypatch):
    world = tmp_path / "world"
    make = writer._make_dialogue
    made = []

    def killed_after_five(*args):
        if len(made) == 5:
            raise KeyboardInterrupt  # as a kill -9 while photos are written
        made.append(1)
        return make(*args)

    monkeypatch.setattr(writer, "_make_dialogue", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        ensure_world(world, dialogues=20, image_size=16, progress=False)
    assert (world / "photos").is_dir() and not (world / "world.json").exists()
    monkeypatch.undo()
    rewritten = ensure_world(world, dialogues=20, image_size=16, progress=False)  # no --force needed: the folder is its own
    assert rewritten.counts["train"] + rewritten.counts["dev"] + rewritten.counts["test"] == 20
    assert len(list((world / "photos").rglob("*.png"))) == 20

"""Data that is silently not used: unreadable photos are counted and reported in training, a run
whose image side has no readable photo is refused, and photo links that leave the dataset
folder are refused and reported by `data check` (issue 18 item 6b)."""

from __future__ import annotations

import logging
import shutil

import pytest

from photodialog.cli.main import main


@pytest.fixture
def world(tiny_world, tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(tiny_world, copy)
    return copy


def _truncate(paths) -> int:
    count = 0
    for path in paths:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        count += 1
    return count


def test_every_train_photo_unreadable_refuses_the_run_with_exit_3(world, tmp_path, run_args, capsys):
    _truncate(sorted((world / "photos" / "train").iterdir()))
    run = tmp_path / "run"
    code = main(["train", *run_args("max_steps=2", data=world), "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 3 and "nothing to learn from" in err and "data check" in err and "Traceback" not in err
    assert not (run / "checkpoints").exists()


def test_some_unreadable_photos_are_counted_and_reported_and_training_goes_on(world, tmp_path, run_args, caplog):
    photos = sorted((world / "photos" / "train").iterdir())
    broken = _truncate(photos[:5])
    with caplog.at_level(logging.WARNING):
        assert main(["train", *run_args("max_steps=1", data=world), "--out", str(tmp_path / "run")]) == 0
    assert f"training without {broken} photo file(s) that could not be used" in caplog.text
    assert "unreadable photo" in caplog.text  # the load report names the reason


def test_a_photo_link_out_of_the_dataset_is_refused_and_reported_by_data_check(world, tmp_path, capsys):
    from photodialog.data.loading import load_dialogues
    from photodialog.data.load_report import PHOTO_LINK_OUTSIDE, LoadReport

    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    photo = sorted((world / "photos" / "train").iterdir())[0]
    shutil.copy(photo, secret)
    photo.unlink()
    photo.symlink_to(secret)
    report = LoadReport()
    dialogues = load_dialogues(world, "train", report=report)
    paths = {p.path for d in dialogues for t in d.turns for p in t.photos if p.path}
    assert str(photo) not in paths and report.counts[PHOTO_LINK_OUTSIDE] == 1
    code = main(["data", "check", str(world), "--split", "train"])
    out = capsys.readouterr()
    assert "photo link leaving the dataset folder" in out.out + out.err and "secret.png" in out.out + out.err
    assert code == 3  # data check: problems found


def test_a_link_inside_the_dataset_and_a_linked_photos_folder_are_fine(world, tmp_path):
    from photodialog.data.loading import load_dialogues
    from photodialog.data.load_report import LoadReport

    first, second = sorted((world / "photos" / "train").iterdir())[:2]
    second.unlink()
    second.symlink_to(first)  # a duplicate photo kept once
    moved = tmp_path / "disk2" / "photos"
    shutil.move(str(world / "photos"), moved)
    (world / "photos").symlink_to(moved)  # photos kept on another disk
    report = LoadReport()
    dialogues = load_dialogues(world, "train", report=report)
    assert report.ok
    assert str(world / "photos" / "train" / second.name) in {p.path for d in dialogues for t in d.turns for p in t.photos}

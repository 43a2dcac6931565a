"""Table 1 counts, hand-checked on the fixtures, and `photodialog data stats`."""

from __future__ import annotations

import json

import pytest

from photodialog.cli.main import main
from photodialog.data.schema import Photo, Turn
from photodialog.data.stats import count_utterances, dataset_stats

from .helpers import FIXTURES, copy_fixture, write_png

# Counted by hand from the fixture files (see the comments of each test).
PHOTOCHAT = {
    "train": dict(dialogues=3, utterances=11, consecutive_utterances=9, photos=3, distinct_photos=2),
    "dev": dict(dialogues=2, utterances=5, consecutive_utterances=4, photos=2, distinct_photos=2),
    "total": dict(dialogues=5, utterances=16, consecutive_utterances=13, photos=5, distinct_photos=4),
}
DIALOGCC = {
    "train": dict(dialogues=2, utterances=6, consecutive_utterances=3, photos=3, distinct_photos=2),
    "dev": dict(dialogues=1, utterances=2, consecutive_utterances=1, photos=1, distinct_photos=1),
    "total": dict(dialogues=3, utterances=8, consecutive_utterances=4, photos=4, distinct_photos=3),
}


def rows_of(stats) -> dict:
    return {row.split: row for row in [*stats.splits, stats.total]}


@pytest.mark.parametrize("name, expected", [("photochat", PHOTOCHAT), ("dialogcc", DIALOGCC)])
def test_hand_checked_counts(name, expected):
    # PhotoChat train: dialogue 1 has 4 text messages by 0,1,1,0 (3 runs), dialogue 2 has 4 by
    # 1,0,0,1 (3 runs), dialogue 3 has 3 by 0,1,0 (3 runs); dialogues 1 and 3 share one photo_id.
    # DialogCC train: bst_1 has 4 text utterances A,B,B,B (2 runs; the photo utterance of A is
    # excluded), daily_7 has 2 by A,A around B's photo utterance (1 run); URL a.jpg appears twice.
    rows = rows_of(dataset_stats(FIXTURES / name))
    for split, counts in expected.items():
        row = rows[split]
        for column, value in counts.items():
            assert getattr(row, column) == value, (split, column)
        assert row.utterances_per_dialogue == pytest.approx(counts["consecutive_utterances"] / counts["dialogues"])
        assert row.photos_per_dialogue == pytest.approx(counts["photos"] / counts["dialogues"])


def test_paper_ratios_follow_from_its_counts():
    # U/D and I/D as Table 1 defines them: PhotoChat train 92,479 / 10,286, DialogCC train 329,969 / 68,402.
    from photodialog.data.stats import SplitStats

    photochat = SplitStats("train", dialogues=10_286, consecutive_utterances=92_479, photos=10_286)
    dialogcc = SplitStats("train", dialogues=68_402, consecutive_utterances=329_969, photos=106_198)
    assert round(photochat.utterances_per_dialogue, 2) == 8.99
    assert round(dialogcc.utterances_per_dialogue, 2) == 4.82
    assert round(dialogcc.photos_per_dialogue, 2) == 1.55


def test_photo_messages_are_excluded_and_do_not_split_a_run():
    messages = [Turn("a", "hi"), Turn("b", "", [Photo("x")]), Turn("a", "there"), Turn("b", "ok"), Turn("b", "yes")]
    assert count_utterances(messages) == (4, 2)


def test_local_photos_are_counted(tmp_path):
    root = copy_fixture("photochat", tmp_path)
    write_png(root / "photos" / "train" / "624e5f6dd7f64d89.png")
    rows = rows_of(dataset_stats(root))
    assert rows["train"].local_photos == 2  # dialogues 1 and 3 share the photo
    assert rows["dev"].local_photos == 0 and rows["total"].local_photos == 2


def test_cli_table_and_json(capsys):
    assert main(["data", "stats", str(FIXTURES / "photochat")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("Split"))
    for column in ("# Dial", "# Utter", "# CUtter", "U/D", "# Img", "# DImg", "I/D"):
        assert column in header
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[1:8] == ["5", "16", "13", "2.60", "5", "4", "1.00"]
    assert "PhotoChat" in lines[0]

    assert main(["data", "stats", str(FIXTURES / "dialogcc"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["splits"]) == ["train", "dev"]
    assert data["total"]["consecutive_utterances"] == 4 and data["formats"] == {"DialogCC": 3}
    assert data["splits"]["train"]["utterances_per_dialogue"] == 1.5


def test_cli_split_option_and_help_documents_exit_codes(capsys):
    assert main(["data", "stats", str(FIXTURES / "dialogcc"), "--split", "valid", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["splits"]) == ["dev"]
    with pytest.raises(SystemExit) as exited:
        main(["data", "stats", "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert "exit codes" in help_text and "--strict" in help_text and "  3  " in help_text


def test_cli_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_caption_ceiling_of_the_default_world_is_every_attribute_at_every_share_target(tiny_world, capsys):
    """Every share target's context says what its photo shows, and `data stats` prints that ceiling."""
    stats = dataset_stats(tiny_world)
    assert set(stats.ceiling) == {"train", "dev", "test"}
    for split, row in stats.ceiling.items():
        assert row["targets"] > 0
        assert row["object"] == row["colour"] == row["scene"] == row["all"] == 100.0, (split, row)
    assert main(["data", "stats", str(tiny_world)]) == 0
    assert "caption ceiling, test" in capsys.readouterr().out


def test_caption_ceiling_sees_an_attribute_left_unsaid(tmp_path, monkeypatch):
    """A world whose sharer leaves the colour unsaid half of the time has a colour ceiling near 50%."""
    from photodialog.data.synth import dialogues, write_world

    monkeypatch.setattr(dialogues, "SAY_COLOUR_PROB", 0.5)
    write_world(tmp_path / "world", dialogues=200, seed=3, image_size=16, progress=False)
    row = dataset_stats(tmp_path / "world").ceiling["train"]
    assert row["object"] == row["scene"] == 100.0
    assert 35.0 < row["colour"] < 65.0 and row["all"] == row["colour"]

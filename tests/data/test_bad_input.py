"""A corpus of broken inputs, each through ``load_dialogues`` and through `photodialog data stats`.

Every case is a dataset folder with one good file and one broken file (or record). Default
mode skips the problem, counts it under its reason and names file, record and key; strict
mode stops at it; a folder with nothing usable is an error either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from photodialog.cli.main import main
from photodialog.data import load_report as reasons
from photodialog.data.loading import load_dialogues
from photodialog.data.load_report import LoadReport
from photodialog.errors import DataError

from .helpers import photochat_record, truncate_file, write_json, write_png

GOOD_PHOTOCHAT = [photochat_record(1, [(0, "hi, look"), (0, None), (1, "nice cat")])]
GOOD_DIALOGCC = [{
    "dialogue_id": "good_1", "split": "train",
    "dialogue": [
        {"utterance_idx": 0, "utterance": "hi", "speaker": "A", "rationale": "", "shared_image": [], "description": ""},
        {"utterance_idx": 1, "utterance": "my dog", "speaker": "B", "rationale": "",
         "shared_image": [{"image_url": "http://x.example/dog.jpg"}], "description": "a dog"},
    ],
}]


@dataclass
class Case:
    """One broken input: how to write it, the reason it counts under, words its message must hold."""

    name: str
    write: callable
    reason: str
    must_mention: tuple[str, ...]
    good: list = None


def _bad_photochat_record(**changes):
    """A file with a good record (index 0) and a record (index 1, dialogue_id 7) broken by ``changes``."""
    record = photochat_record(7, [(0, "hello"), (0, None), (1, "wow")])
    for key, value in changes.items():
        if key.startswith("message1_"):
            record["dialogue"][1][key.removeprefix("message1_")] = value
        elif value is _DELETE:
            del record[key]
        else:
            record[key] = value
    return [photochat_record(6, [(0, "ok"), (1, "fine")]), record]


_DELETE = object()


def _write_records(records):
    return lambda folder: write_json(folder / "train" / "bad.json", records)


def _write_message_without_user_id(folder):
    records = _bad_photochat_record()
    del records[1]["dialogue"][1]["user_id"]
    return write_json(folder / "train" / "bad.json", records)


def _write_truncated_json(folder):
    path = folder / "train" / "bad.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'[{"dialogue": [{"message": "hel')
    return path


def _write_latin1_text(folder):
    text = json.dumps(_bad_photochat_record(message1_message="PLACEHOLDER"))
    path = folder / "train" / "bad.json"
    path.write_bytes(text.encode("utf-8").replace(b"PLACEHOLDER", b"caf\xe9 cr\xe8me"))
    return path


def _write_bad_jsonl_line(folder):
    good = json.dumps(photochat_record(6, [(0, "ok"), (1, "fine")]))
    path = folder / "train" / "bad.jsonl"
    path.write_text(good + "\n" + '{"dialogue": [oops\n', encoding="utf-8")
    return path


def _dialogcc_with(utterance_changes: dict):
    record = json.loads(json.dumps(GOOD_DIALOGCC[0]))
    record["dialogue_id"] = "bad_2"
    record["dialogue"][1].update(utterance_changes)
    return lambda folder: write_json(folder / "train.json", [GOOD_DIALOGCC[0], record])


CASES = [
    Case("malformed JSON file", _write_truncated_json, reasons.MALFORMED_JSON, ("bad.json", "line 1", "file skipped")),
    Case("malformed JSONL line", _write_bad_jsonl_line, reasons.MALFORMED_JSON, ("bad.jsonl", "record 1", "line 2")),
    Case("missing key", _write_message_without_user_id, reasons.MISSING_KEY,
         ("bad.json", "record 1", "dialogue_id 7", "'user_id'", "dialogue[1]")),
    Case("missing photo description", _write_records(_bad_photochat_record(photo_description=_DELETE)),
         reasons.MISSING_KEY, ("bad.json", "record 1", "'photo_description'")),
    Case("wrong type", _write_records(_bad_photochat_record(message1_share_photo="yes")), reasons.WRONG_TYPE,
         ("bad.json", "record 1", "'share_photo'", "true/false", "not a string")),
    Case("dialogue not a list", _write_records(_bad_photochat_record(dialogue="hello")), reasons.WRONG_TYPE,
         ("record 1", "'dialogue'", "a list")),
    Case("empty dialogue", _write_records(_bad_photochat_record(dialogue=[])), reasons.EMPTY_DIALOGUE,
         ("bad.json", "record 1", "empty")),
    Case("photo without caption", _write_records(_bad_photochat_record(photo_description="   ")),
         reasons.PHOTO_WITHOUT_CAPTION, ("bad.json", "record 1", "photo_description")),
    Case("not UTF-8", _write_latin1_text, reasons.NOT_UTF8, ("bad.json", "record 1", "'message'", "UTF-8")),
    Case("DialogCC image without URL", _dialogcc_with({"shared_image": [{"caption": "a dog"}]}), reasons.MISSING_KEY,
         ("train.json", "record 1", "dialogue_id bad_2", "'image_url'", "shared_image[0]"), GOOD_DIALOGCC),
    Case("DialogCC shared_image not a list", _dialogcc_with({"shared_image": "dog.jpg"}), reasons.WRONG_TYPE,
         ("train.json", "record 1", "'shared_image'"), GOOD_DIALOGCC),
    Case("DialogCC photo without caption", _dialogcc_with({"description": ""}), reasons.PHOTO_WITHOUT_CAPTION,
         ("train.json", "record 1", "shared_image[0]", "no caption"), GOOD_DIALOGCC),
]


def _dataset_with(case: Case, folder: Path) -> Path:
    if case.good is GOOD_DIALOGCC:
        write_json(folder / "test.json", GOOD_DIALOGCC)
    else:
        write_json(folder / "train" / "good.json", GOOD_PHOTOCHAT)
    case.write(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_problem_is_skipped_counted_and_named(case, tmp_path):
    folder = _dataset_with(case, tmp_path)
    report = LoadReport()
    dialogues = load_dialogues(folder, report=report)
    assert report.counts == {case.reason: 1}
    whole_file_lost = case.name == "malformed JSON file"
    assert len(dialogues) == (1 if whole_file_lost else 2)  # the good file, and the good record beside the bad one
    assert all(d.dialogue_id not in ("7", "bad_2") for d in dialogues)
    for word in case.must_mention:
        assert word in report.messages[0], f"{word!r} not in {report.messages[0]!r}"
    assert case.reason in report.summary()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_strict_mode_stops_at_the_problem(case, tmp_path):
    folder = _dataset_with(case, tmp_path)
    with pytest.raises(DataError) as caught:
        load_dialogues(folder, strict=True)
    assert all(word in str(caught.value) for word in case.must_mention[:2])
    assert "strict" in str(caught.value) and "skipped" not in str(caught.value)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_stats_cli_reports_on_stderr_and_exits_0_or_3_in_strict_mode(case, tmp_path, capsys):
    folder = _dataset_with(case, tmp_path)
    assert main(["data", "stats", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert case.reason in err and case.must_mention[0] in err
    assert "total" in out and case.reason not in out  # the table stays clean for pipes

    assert main(["data", "stats", str(folder), "--strict"]) == 3
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and case.must_mention[0] in err and "Traceback" not in err
    assert out == ""


def test_nothing_usable_is_an_error_even_without_strict(tmp_path, capsys):
    _write_truncated_json(tmp_path)
    with pytest.raises(DataError, match=r"no usable dialogues[\s\S]*malformed JSON"):
        load_dialogues(tmp_path)
    assert main(["data", "stats", str(tmp_path)]) == 3
    assert "no usable dialogues" in capsys.readouterr().err


def test_a_file_of_another_format_is_reported_not_guessed(tmp_path):
    write_json(tmp_path / "train" / "good.json", GOOD_PHOTOCHAT)
    write_json(tmp_path / "train" / "other.json", [{"conversation": ["a", "b"]}])
    report = LoadReport()
    assert len(load_dialogues(tmp_path, report=report)) == 1
    assert report.counts == {reasons.UNKNOWN_FORMAT: 1}
    assert "other.json" in report.messages[0] and "conversation" in report.messages[0]


def test_many_problems_keep_the_first_messages_and_count_all(tmp_path):
    records = [photochat_record(i, [(0, "a"), (1, "b")]) for i in range(30)]
    for record in records[1:]:
        del record["dialogue"][0]["user_id"]
    write_json(tmp_path / "train" / "x.json", records)
    report = LoadReport(max_messages=3)
    assert len(load_dialogues(tmp_path, report=report)) == 1
    assert report.counts[reasons.MISSING_KEY] == 29 and len(report.messages) == 3
    assert "26 more" in report.summary()


# --- photo files -------------------------------------------------------------------------


def _dataset_with_photos(folder: Path, broken: str) -> Path:
    write_json(folder / "train" / "good.json", [
        photochat_record(1, [(0, "a"), (0, None), (1, "b")]),
        photochat_record(2, [(0, "c"), (0, None), (1, "d")]),
    ])
    write_png(folder / "photos" / "train" / "000001.png", size=(64, 64))
    bad = write_png(folder / "photos" / "train" / "000002.png", size=(64, 64), seed=1)
    if broken == "truncated":
        truncate_file(bad)
    else:
        bad.write_text("<html>404 Not Found</html>")
    return bad


@pytest.mark.parametrize("broken", ["truncated", "not an image"])
def test_unreadable_photo_is_reported_and_treated_as_missing(broken, tmp_path):
    bad = _dataset_with_photos(tmp_path, broken)
    unchecked = load_dialogues(tmp_path)
    assert unchecked[1].turns[0].photos[0].path == str(bad.absolute())  # not decoded unless asked

    report = LoadReport()
    dialogues = load_dialogues(tmp_path, report=report, check_photos=True)
    assert len(dialogues) == 2  # the dialogue stays: its photo is still there as a caption
    assert dialogues[0].turns[0].photos[0].path is not None
    assert dialogues[1].turns[0].photos[0].path is None
    assert report.counts == {reasons.UNREADABLE_PHOTO: 1}
    assert "000002.png" in report.messages[0] and "good.json:1" in report.messages[0]

    with pytest.raises(DataError, match="000002.png"):
        load_dialogues(tmp_path, strict=True, check_photos=True)


def test_stats_cli_with_check_photos(tmp_path, capsys):
    _dataset_with_photos(tmp_path, "truncated")
    assert main(["data", "stats", str(tmp_path), "--check-photos", "--json"]) == 0
    out, err = capsys.readouterr()
    table = json.loads(out)
    assert table["total"]["photos"] == 2 and table["total"]["local_photos"] == 1
    assert table["load_report"]["problems"] == {reasons.UNREADABLE_PHOTO: 1}
    assert "truncated" in err
    assert main(["data", "stats", str(tmp_path), "--check-photos", "--strict"]) == 3


def test_check_cli_exit_codes(tmp_path, capsys):
    clean = tmp_path / "clean"
    write_json(clean / "train" / "good.json", GOOD_PHOTOCHAT)
    assert main(["data", "check", str(clean)]) == 0
    assert "no problems" in capsys.readouterr().out

    broken = tmp_path / "broken"
    _dataset_with_photos(broken, "not an image")
    assert main(["data", "check", str(broken)]) == 3
    out = capsys.readouterr().out
    assert reasons.UNREADABLE_PHOTO in out and "1 with a local file" in out


@pytest.mark.parametrize("progress", [True, False])
def test_the_photo_check_bar_shows_only_when_progress_is_on(progress, tmp_path, capsys):
    # the bar appears from 200 photos on; `--no-progress` (progress=False) hides it on every command
    records = [photochat_record(i, [(0, "look"), (0, None), (1, "nice")]) for i in range(1, 202)]
    write_json(tmp_path / "train" / "good.json", records)
    for i in range(1, 202):
        write_png(tmp_path / "photos" / "train" / f"{i:06d}.png", size=(4, 4), seed=i)
    capsys.readouterr()
    dialogues = load_dialogues(tmp_path, check_photos=True, progress=progress)
    assert all(d.turns[0].photos[0].path for d in dialogues)
    assert ("checking photos" in capsys.readouterr().err) == progress

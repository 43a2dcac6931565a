"""Kind 5 of issue 18: JSON (and YAML) nested thousands deep, or hundreds of MB, is refused with a message.

The issue's inputs: a JSON, JSONL or ``--history`` file nested a few thousand levels deep
(``RecursionError`` in ``data stats``, ``data check``, ``train``, ``chat``) and a 150 MB
``--history`` (the process grew past 14 GB). Every file a user gives is now measured first:
depth at most ``json_limits.MAX_DEPTH`` (64), size at most the limit of its kind; a breach
names the file and the limit, exit 2 (usage) or 3 (data). Variants: a deep JSONL line among
good ones, a deep ``.json`` that is really JSONL, brackets inside strings, recipes and
``key=value`` overrides, a dataset file over 1 GiB.
"""

from __future__ import annotations

import json

import pytest

from photodialog import json_limits
from photodialog.cli.main import main
from photodialog.config import load_config
from photodialog.errors import ConfigError

from .helpers import FAST_FLAGS, nested_json

DEEP = 5000  # the depth: far past Python's recursion limit
GOOD = {"dialogue": [{"message": "hi", "share_photo": False, "user_id": 0},
                     {"message": "hello", "share_photo": False, "user_id": 1}],
        "dialogue_id": 1, "photo_description": "", "photo_url": "", "photo_id": ""}


def _sparse(path, size: int):
    """A file of ``size`` bytes that takes no disk (only its size is ever looked at)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.truncate(size)
    return path


# ------------------------------------------------------------ measuring


@pytest.mark.parametrize("text, depth", [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4),
    ('["[[[[", "{{{{"]', 1),  # brackets in strings do not count
    ('["a \\" [[[[ \\\\", [2]]', 2),  # nor after escaped quotes and backslashes
    (nested_json(DEEP), DEEP),
])
def test_nesting_depth_counts_only_real_brackets(text, depth):
    assert json_limits.nesting_depth(text) == depth


def test_the_limit_is_inclusive_and_the_parser_never_recurses_past_it():
    assert json_limits.loads(nested_json(json_limits.MAX_DEPTH)) is not None
    with pytest.raises(json_limits.TooDeep, match="nested 65 levels deep, over the limit of 64"):
        json_limits.loads(nested_json(json_limits.MAX_DEPTH + 1))
    with pytest.raises(json_limits.TooDeep):
        json_limits.loads(nested_json(DEEP))


# ------------------------------------------------------------ datasets: data stats, data check, train


@pytest.mark.parametrize("command", ["stats", "check"])
@pytest.mark.parametrize("name", ["d.json", "d.jsonl"])
def test_data_commands_name_the_deep_file_and_the_limit(command, name, tmp_path, capsys):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / name).write_text(nested_json(DEEP))
    assert main(["data", command, str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert name in err and "5,000 levels deep, over the limit of 64" in err and "Traceback" not in err


def test_a_deep_jsonl_line_costs_only_its_record(tmp_path, capsys):
    lines = [json.dumps(GOOD), '{"dialogue": ' + nested_json(DEEP) + "}", json.dumps(GOOD)]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "d.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["data", "check", str(tmp_path)]) == 3  # a problem was found ...
    out = capsys.readouterr().out
    assert "loaded 2 dialogues from 3 records" in out  # ... and the good records are still read
    assert "line 2" in out and "over the limit of 64" in out


def test_a_deep_json_file_that_is_really_jsonl(tmp_path, capsys):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "d.json").write_text(json.dumps(GOOD) + "\n" + nested_json(DEEP) + "\n")
    assert main(["data", "stats", str(tmp_path)]) == 0
    assert "over the limit of 64" in capsys.readouterr().err


def test_a_dataset_file_over_the_size_limit_is_not_read(tmp_path, capsys):
    _sparse(tmp_path / "train" / "huge.json", json_limits.MAX_DATASET_FILE_BYTES + 1)
    assert main(["data", "check", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "huge.json is 1,024.0 MB, more than the limit of 1,024.0 MB" in err and "split it" in err


def test_train_on_a_deep_dataset_is_a_data_error(tmp_path, capsys):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "d.json").write_text(nested_json(DEEP))
    code = main(["train", "--config", "tiny-e2e", f"data.path={tmp_path / 'data'}", "--output-dir", str(tmp_path / "run")])
    assert code == 3
    assert "over the limit of 64" in capsys.readouterr().err


# ------------------------------------------------------------ chat --history


@pytest.fixture
def no_model(monkeypatch):
    monkeypatch.setattr("photodialog.cli.chat.load_engine", lambda args: pytest.fail("the model was loaded"))


@pytest.mark.parametrize("text", [nested_json(DEEP), '{"speaker": "user", "text": ' + nested_json(DEEP) + "}\n"])
def test_a_deep_history_names_the_file_and_the_limit(text, tmp_path, capsys, no_model):
    history = tmp_path / "history.json"
    history.write_text(text)
    code = main(["chat", "--checkpoint", str(tmp_path), *FAST_FLAGS, "--history", str(history), "--message", "hi"])
    assert code == 2
    err = capsys.readouterr().err
    assert "history.json" in err and "over the limit of 64" in err


@pytest.mark.parametrize("size", [5 * 2**20, 150 * 2**20])  # just over the limit, and the 150 MB
def test_a_huge_history_is_refused_without_reading_it(size, tmp_path, capsys, no_model):
    history = _sparse(tmp_path / "big.json", size)
    code = main(["chat", "--checkpoint", str(tmp_path), *FAST_FLAGS, "--history", str(history), "--message", "hi"])
    assert code == 2
    assert f"big.json is {size / 2**20:,.1f} MB, more than the limit of 4.0 MB" in capsys.readouterr().err


def test_a_history_with_too_many_photos_is_refused(tmp_path, world_photo_png, no_model, capsys):
    rows = [{"speaker": "user", "text": f"photo {n}", "photos": [str(world_photo_png)]} for n in range(40)]
    history = tmp_path / "h.jsonl"
    history.write_text("\n".join(json.dumps(row) for row in rows))
    assert main(["chat", "--checkpoint", str(tmp_path), *FAST_FLAGS, "--history", str(history), "--message", "hi"]) == 2
    assert "shares 40 photo files, more than the 32" in capsys.readouterr().err


@pytest.fixture
def world_photo_png(tmp_path):
    from PIL import Image

    path = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(path)
    return path


# ------------------------------------------------------------ recipes and overrides


def test_a_deep_recipe_or_override_is_a_config_error(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("train: " + nested_json(DEEP) + "\n")
    with pytest.raises(ConfigError, match="deep.yaml is nested deeper than the YAML parser can follow"):
        load_config(str(deep))
    deep.write_text("train: " + nested_json(100) + "\n")
    with pytest.raises(ConfigError, match="nested 101 levels deep, over the limit of 64"):
        load_config(str(deep))
    with pytest.raises(ConfigError, match="the value of 'train.lr' is nested"):
        load_config("tiny-e2e", ["train.lr=" + "[" * DEEP])


def test_a_huge_recipe_is_refused(tmp_path, capsys):
    recipe = _sparse(tmp_path / "big.yaml", 2 * 2**20)
    assert main(["train", "--config", str(recipe), "--output-dir", str(tmp_path / "run")]) == 2
    assert "big.yaml is 2.0 MB, more than the limit of 1.0 MB" in capsys.readouterr().err


def test_eval_compare_refuses_a_deep_or_huge_result(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text(nested_json(DEEP))
    assert main(["eval", "compare", str(deep)]) == 2
    assert "deep.json is nested 5,000 levels deep" in capsys.readouterr().err
    huge = _sparse(tmp_path / "huge.json", json_limits.MAX_RESULT_BYTES + 1)
    assert main(["eval", "compare", str(huge)]) == 2
    assert "huge.json is 64.0 MB, more than the limit" in capsys.readouterr().err

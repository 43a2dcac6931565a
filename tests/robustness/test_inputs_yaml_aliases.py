"""Nested YAML aliases ("billion laughs": 324 bytes standing for 9^9 nodes) are refused at the first
alias, wherever photodialog reads YAML: a recipe, a key=value override, and the config.yaml of a
checkpoint or an export (read by chat, serve, eval, export). Before, the depth check walked every
alias as a copy and kept train busy for about 15 minutes."""

from __future__ import annotations

import json
import time

import pytest

from photodialog import json_limits
from photodialog.cli.main import main
from photodialog.config import load_config
from photodialog.errors import ConfigError


def bomb(levels: int = 9, width: int = 9) -> str:
    names = "abcdefghijklmnop"
    lines = [f"a: &a [{', '.join(['x'] * width)}]"]
    for previous, name in zip(names, names[1:levels]):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_is_refused_before_any_value_is_built():
    started = time.perf_counter()
    with pytest.raises(json_limits.YamlAlias, match=r"alias \(\*a\) at line 2"):
        json_limits.load_yaml(bomb())
    assert time.perf_counter() - started < 1
    with pytest.raises(json_limits.YamlAlias):  # a merge key is an alias too
        json_limits.load_yaml("base: &b {lr: 1}\ntrain:\n  <<: *b\n")
    assert json_limits.load_yaml("train: {lr: 0.1}  # &not-an-anchor\nname: '*x'\n") == {"train": {"lr": 0.1}, "name": "*x"}


def test_a_recipe_or_override_with_aliases_is_a_config_error(tmp_path):
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(bomb())
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="bomb.yaml has an alias"):
        load_config(str(recipe))
    with pytest.raises(ConfigError, match="the value of 'max_steps' has an alias"):
        load_config("tiny-e2e", ["max_steps=*a"])
    assert time.perf_counter() - started < 5


def test_train_with_an_alias_bomb_recipe_exits_2_at_once(tmp_path, capsys):
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(bomb())
    started = time.perf_counter()
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "run")]) == 2
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert "alias" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind, command", [
    ("export", ["chat", "--message", "hi", "--json"]), ("export", ["export", "--out", "OUT"]),
    ("checkpoint", ["eval"]), ("checkpoint", ["chat", "--message", "hi", "--json"]),
])
def test_a_checkpoint_or_export_whose_config_is_a_bomb_is_refused(kind, command, tmp_path, capsys):
    from safetensors.torch import save_file
    import torch

    folder = tmp_path / "stranger"
    folder.mkdir()
    (folder / "config.yaml").write_text(bomb())
    if kind == "export":
        (folder / "export.json").write_text(json.dumps({"schema": "photodialog.export/1"}))
    else:  # a checkpoint of an older version (no manifest)
        (folder / "state.json").write_text(json.dumps({"step": 1}))
        save_file({"w": torch.ones(2)}, str(folder / "trainable.safetensors"))
    argv = [command[0], "--checkpoint", str(folder), *[str(tmp_path / "out") if a == "OUT" else a for a in command[1:]]]
    started = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - started < 30
    err = capsys.readouterr().err
    assert "alias" in err and "Traceback" not in err

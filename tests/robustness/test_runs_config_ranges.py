"""Config values that passed validation and then crashed or did nothing are refused up front,
naming the key, with exit code 2 (issue 18 item 6)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from photodialog.cli.main import main
from photodialog.config import RANGES, RunConfig, _leaf_keys, load_config
from photodialog.errors import ConfigError


def _numeric_keys(cls=RunConfig, prefix=""):
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys += _numeric_keys(hint, prefix + f.name + ".")
        elif hint in (int, float) or hint == list[int]:
            keys.append(prefix + f.name)
    return keys


def test_every_numeric_key_has_a_range():
    assert sorted(set(_numeric_keys()) - set(RANGES)) == []
    assert set(RANGES) <= set(_leaf_keys(RunConfig))


@pytest.mark.parametrize("override, key", [
    ("max_steps=-5", "train.max_steps"), ("epochs=0", "train.epochs"), ("epochs=-1", "train.epochs"),
    ("data.max_dialogues=-150", "data.max_dialogues"), ("lr=.inf", "train.lr"), ("train.lr=nan", "train.lr"),
    ("grad_clip=.nan", "train.grad_clip"), ("train.alpha=-1", "train.alpha"), ("train.save_every_steps=0", "train.save_every_steps"),
    ("train.log_every_steps=0", "train.log_every_steps"), ("data.photo_sample_weight=-0.5", "data.photo_sample_weight"),
    ("data.photo_sample_weight=0", "data.photo_sample_weight"), ("train.seed=-3", "train.seed"), ("eval.top_p=1.5", "eval.top_p"),
    ("eval.temperature=-inf", "eval.temperature"), ("train.max_bad_steps_in_row=0", "train.max_bad_steps_in_row"),
    ("model.lora.dropout=1", "model.lora.dropout"), ("train.warmup_steps=-1", "train.warmup_steps"),
])
def test_out_of_range_values_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}' must be"):
        load_config("tiny-e2e", [override])


@pytest.mark.parametrize("override, key", [
    ("model.tiny.llm_heads=3", "model.tiny.llm_heads"), ("model.tiny.llm_heads=0", "model.tiny.llm_heads"),
    ("model.tiny.llm_heads=128", "model.tiny.llm_heads"),  # head size 1: odd, no rotary embedding
    ("model.tiny.vision_patch=5", "model.tiny.vision_patch"), ("model.tiny.qformer_hidden=30", "model.tiny.qformer_hidden"),
    ("model.tiny.unet_channels=[32,60]", "model.tiny.unet_channels"), ("model.tiny.unet_channels=[]", "model.tiny.unet_channels"),
    ("model.tiny.image_size=18", "model.tiny.image_size"), ("model.image_size=6", "model.image_size"),
    ("model.tiny.llm_vocab=3", "model.tiny.llm_vocab"), ("model.tiny.vae_channels=[30]", "model.tiny.vae_channels"),
    ("model.tiny.unet_attention=[true]", "model.tiny.unet_attention"),
])
def test_tiny_architecture_constraints_are_checked_before_any_work(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config("tiny-e2e", [override])


@pytest.mark.parametrize("override", ["model.tiny.llm_heads=8", "max_steps=0", "train.grad_clip=0", "train.keep_last=0"])
def test_values_at_the_edge_of_their_range_are_accepted(override):
    load_config("tiny-e2e", [override])


def test_the_cli_exits_2_naming_the_key_and_writes_no_run(tmp_path, tiny_world, capsys):
    run = tmp_path / "run"
    code = main(["train", "--config", "tiny-e2e", f"data.path={tiny_world}", "train.lr=nan", "--output-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and "'train.lr' must be a finite number > 0" in err and "Traceback" not in err
    assert not run.exists()


def test_a_vocabulary_too_small_for_the_text_is_a_config_error_naming_the_key():
    from photodialog.models.tokenizers import train_llm_tokenizer

    texts = ["a quick brown fox jumps over the lazy dog: 0123456789!"] * 5
    with pytest.raises(ConfigError, match="'model.tiny.llm_vocab' \\(20\\).*raise it"):
        train_llm_tokenizer(texts, 20)


def test_huge_eval_seeds_are_refused_before_any_reply(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--seeds", "0,100000000000000"])
    assert exit_info.value.code == 2 and "at most 4294967295" in capsys.readouterr().err

"""Config keys that were removed: old run folders still load; a retired key cannot be set, an
ignored one (``IGNORED_KEYS``) still can, with a warning."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from photodialog.config import IGNORED_KEYS, RETIRED_KEYS, RunConfig, load_config, save_config
from photodialog.errors import ConfigError


def _set(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def test_a_config_saved_with_the_retired_keys_still_loads(tmp_path):
    """Earlier versions wrote these keys into every run's config.yaml (and its checkpoints')."""
    path = tmp_path / "config.yaml"
    save_config(RunConfig(), path)
    data = yaml.safe_load(path.read_text())
    for key in RETIRED_KEYS:
        _set(data, key, "data" if key.endswith("corpus") else 0)
    path.write_text(yaml.safe_dump(data))
    assert load_config(str(path)) == RunConfig()


@pytest.mark.parametrize("key", sorted(RETIRED_KEYS))
def test_retired_keys_are_not_fields_and_cannot_be_overridden(key):
    section, *_, name = key.split(".")
    owner = {"model": RunConfig().model.tiny, "data": RunConfig().data, "train": RunConfig().train}[section]
    assert name not in {f.name for f in dataclasses.fields(owner)}
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(None, [f"{key}=1"])


def test_max_caption_tokens_is_ignored_with_a_warning_saying_what_limits_a_caption(tmp_path):
    """model.max_caption_tokens was checked but never read: a recipe, saved config or override that
    sets it still loads (as if it were not there), and the warning says what to use and when it is refused."""
    assert "model.max_caption_tokens" in IGNORED_KEYS
    assert "max_caption_tokens" not in {f.name for f in dataclasses.fields(RunConfig().model)}
    recipe = tmp_path / "old.yaml"
    recipe.write_text("model:\n  max_caption_tokens: 30\n", encoding="utf-8")
    with pytest.warns(FutureWarning, match="'model.max_caption_tokens' is ignored") as caught:
        assert load_config(str(recipe)) == RunConfig()
    message = " ".join(str(w.message) for w in caught if "max_caption_tokens" in str(w.message))
    for words in ("eval.max_new_tokens", "model.max_response_tokens", "version 1.0 will refuse it"):
        assert words in message, words
    for override in ("model.max_caption_tokens=30", "max_caption_tokens=30"):
        with pytest.warns(FutureWarning, match="'model.max_caption_tokens' is ignored"):
            assert load_config(None, [override]) == RunConfig()


def test_a_number_in_exponent_form_is_read_as_a_number():
    from photodialog.config import load_config

    config = load_config("tiny-e2e", ["train.lr=1e-4", "model.snr_gamma=5e0"])
    assert config.train.lr == 1e-4 and config.model.snr_gamma == 5.0


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return out


def test_the_authors_recipe_is_the_papers_with_the_authors_settings():
    """paper-photochat-authors.yaml differs from paper-photochat.yaml in the authors' code's settings
    only (plain straight-through at tau 1, all-pairs summed, argmax captions, LoRA LLM with frozen
    perceptron and text encoder, beam 2), and its header names each of them."""
    from importlib.resources import files

    paper = _flat(dataclasses.asdict(load_config("paper-photochat")))
    authors = _flat(dataclasses.asdict(load_config("paper-photochat-authors")))
    assert {k: authors[k] for k in authors if authors[k] != paper[k]} == {
        "model.pooling": "sum", "model.caption_source": "argmax", "model.gumbel_noise": False,
        "model.trainable.llm": "lora", "model.trainable.perceptron": "frozen", "model.trainable.text_encoder": "frozen",
        "train.tau_end": 1.0, "train.tau_anneal_epochs": 0.0, "eval.decoding": "beam",
    }
    assert authors["model.bridge"] == "sentence" and authors["model.own_caption_path"] == "joint"
    assert authors["model.lora.r"] == 32 and authors["model.lora.target_modules"] == ["q_proj", "k_proj", "v_proj"]
    assert authors["model.lora.train_embeddings"] and authors["model.trainable.unet"] == "full" and authors["model.trainable.vae"] == "frozen"
    assert (authors["eval.num_beams"], authors["eval.max_new_tokens"], authors["eval.diffusion_steps"], authors["train.seed"]) == (2, 30, 20, 0)
    header = (files("photodialog") / "configs" / "paper-photochat-authors.yaml").read_text(encoding="utf-8")
    for word in ("no Gumbel noise", "pooling: sum", "argmax", "LoRA r 32", "2 beams", "BLEU-2"):
        assert word in header, word

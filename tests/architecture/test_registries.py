"""One registry per extension point: the config, the command line and the code read its names."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from photodialog import registry
from photodialog.config import CHOICES, load_config
from photodialog.errors import ConfigError

# Config keys whose allowed values are a registry's names.
CONFIG_REGISTRIES = {
    "model.bridge": registry.BRIDGES,
    "eval.decoding": registry.DECODINGS,
    "eval.sampler": registry.SAMPLERS,
}
ALL_REGISTRIES = list(registry.REGISTRIES)


@pytest.mark.parametrize("key", sorted(CONFIG_REGISTRIES))
def test_every_allowed_config_value_is_its_registry(key):
    assert CHOICES[key] == CONFIG_REGISTRIES[key].names


@pytest.mark.parametrize("kind", [r.kind for r in ALL_REGISTRIES])
def test_every_registered_implementation_loads(kind):
    found = next(r for r in ALL_REGISTRIES if r.kind == kind)
    for entry in found:
        if entry.target is not None:
            assert found.load(entry.name) is not None, entry.name


def test_the_code_reads_the_registries():
    from photodialog.data.loading import FORMATS
    from photodialog.models import bridge, generation_settings, image_generator
    from photodialog.training import baselines

    assert [module.__name__ for module in FORMATS] == [e.target for e in registry.DATASET_FORMATS]
    # One name per concept: the modules that check these values read the registry itself, no copy of its names.
    for module in (bridge, generation_settings, image_generator, baselines):
        for name in ("BRIDGES", "DECODINGS", "SAMPLERS", "BASELINES"):
            assert getattr(module, name, getattr(registry, name)) is getattr(registry, name), (module.__name__, name)
    from photodialog.data.download.sources import SOURCES

    assert [(name, source.name) for name, source in SOURCES.items()] == [(n, n) for n in registry.DATASET_SOURCES.names]


def _choices(parser: argparse.ArgumentParser, flag: str):
    return next(a.choices for a in parser._actions if flag in a.option_strings)


def test_the_command_line_offers_the_registered_names():
    from photodialog.cli.common import add_generation_arguments
    from photodialog.cli.eval import add_eval_arguments

    chat, evaluation = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_generation_arguments(chat)
    add_eval_arguments(evaluation)
    for parser in (chat, evaluation):
        assert tuple(_choices(parser, "--sampler")) == registry.SAMPLERS.names
        assert tuple(_choices(parser, "--decoding")) == registry.DECODINGS.names


def test_an_unknown_name_is_a_message_listing_the_registered_ones():
    with pytest.raises(ConfigError, match="unknown sampler 'heun'; choose one of ddim, dpm, euler, ddpm"):
        registry.SAMPLERS.load("heun")
    with pytest.raises(ConfigError, match="'model.bridge' must be one of exact, sentence, word, none"):
        load_config(None, ["model.bridge=phrase"])


def test_a_name_registered_twice_is_refused():
    twice = registry.Registry("widget")
    twice.add("a", None, "first")
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        twice.add("a", None, "second")


def test_config_and_the_help_text_import_no_torch():
    code = (
        "import sys\n"
        "import photodialog.config, photodialog.registry, photodialog.models.generation_settings\n"
        "from photodialog.cli.main import build_parser\n"
        "build_parser(['--help'])\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------ one name: sampler (was eval.scheduler, --scheduler)


def test_the_old_config_key_still_reads_with_a_warning(tmp_path):
    recipe = tmp_path / "old.yaml"
    recipe.write_text("eval:\n  scheduler: euler\n", encoding="utf-8")
    with pytest.warns(FutureWarning, match="'eval.scheduler' is now 'eval.sampler'"):
        assert load_config(str(recipe)).eval.sampler == "euler"
    with pytest.warns(FutureWarning, match="is now 'eval.sampler'"):
        assert load_config(None, ["scheduler=dpm"]).eval.sampler == "dpm"
    with pytest.warns(FutureWarning):
        with pytest.raises(ConfigError, match="'eval.sampler' must be one of"):
            load_config(None, ["eval.scheduler=heun"])


def test_the_old_flag_still_works_with_a_warning(capsys):
    from photodialog.cli.common import add_generation_arguments
    from photodialog.cli.eval import add_eval_arguments

    for add in (add_generation_arguments, add_eval_arguments):
        parser = argparse.ArgumentParser()
        add(parser)
        assert parser.parse_args(["--scheduler", "ddpm"]).sampler == "ddpm"
        assert "--scheduler is now --sampler" in capsys.readouterr().err
        assert parser.parse_args(["--sampler", "euler"]).sampler == "euler"
        assert capsys.readouterr().err == ""


# ------------------------------------------------------------ generation settings: one definition


def test_generation_settings_defaults_are_the_eval_config_and_every_command_has_the_same_flags():
    import dataclasses

    from photodialog.cli.common import add_generation_arguments
    from photodialog.cli.eval import add_eval_arguments
    from photodialog.config import EvalConfig
    from photodialog.models.generation_settings import GenerationSettings

    protocol, settings = EvalConfig(), GenerationSettings()
    shared = {f.name for f in dataclasses.fields(GenerationSettings)} & {f.name for f in dataclasses.fields(EvalConfig)}
    assert shared >= {"decoding", "sampler", "max_new_tokens", "diffusion_steps", "guidance_scale"}
    assert {name: getattr(settings, name) for name in shared} == {name: getattr(protocol, name) for name in shared}

    def flags(parser):
        return {o for a in parser._actions for o in a.option_strings if a.help != argparse.SUPPRESS}

    chat, evaluation = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_generation_arguments(chat)
    add_eval_arguments(evaluation)
    generation = flags(chat) - {"-h", "--help"}
    assert generation <= flags(evaluation) | {"--seed"}  # eval takes --seeds instead
    assert {"--" + name.replace("_", "-") for name in shared} <= generation


@pytest.mark.parametrize("name, allowed, refused", [
    ("max_new_tokens", "MAX_NEW_TOKENS", 1), ("num_beams", "MAX_BEAMS", 1), ("diffusion_steps", "MAX_DIFFUSION_STEPS", 1),
    ("guidance_scale", "MAX_GUIDANCE_SCALE", 0.5), ("top_p", "MIN_TOP_P", -1e-7),
])
def test_a_recipes_eval_section_and_check_settings_share_one_set_of_limits(name, allowed, refused):
    """The limits live in config (MAX_*, MIN_TOP_P): the value at a limit passes both checks, one
    step beyond it fails both."""
    from photodialog import config
    from photodialog.errors import UserError
    from photodialog.models.generation_settings import GenerationSettings, check_settings

    edge = getattr(config, allowed)
    check_settings(GenerationSettings(**{name: edge}))
    assert getattr(load_config(None, [f"eval.{name}={edge!r}"]).eval, name) == edge
    beyond = edge + refused
    with pytest.raises(UserError):
        check_settings(GenerationSettings(**{name: beyond}))
    with pytest.raises(ConfigError, match=f"'eval.{name}' must be"):
        load_config(None, [f"eval.{name}={beyond!r}"])


def test_one_name_for_the_output_folder_and_for_no_progress_bars(capsys, tmp_path):
    from photodialog.cli.main import build_parser

    parser = build_parser()
    new = parser.parse_args(["train", "--config", "tiny-e2e", "--out", str(tmp_path)])
    assert new.output_dir == str(tmp_path) and capsys.readouterr().err == ""
    old = parser.parse_args(["train", "--config", "tiny-e2e", "--output-dir", str(tmp_path)])
    assert old.output_dir == str(tmp_path)
    assert "--output-dir is now --out" in capsys.readouterr().err
    for command in (["data", "synth", "--out", "w"], ["data", "probe", "w"], ["export", "--checkpoint", "r", "--out", "e"]):
        assert parser.parse_args([*command, "--no-progress"]).quiet is True
        assert parser.parse_args(command).quiet is False
        assert parser.parse_args([*command, "--quiet"]).quiet is True
        assert "--quiet is now --no-progress" in capsys.readouterr().err


# ------------------------------------------------------------ adding one: a function and a registration line


def first_token_blocks(bridge, caption, sd_row):
    """A made-up bridge: only the caption's first LLM token carries L_v's gradient, to all its SD tokens."""
    content = [i for i in caption.llm_ids if i not in bridge.llm_specials][:1]
    return [(content, sorted(set(sd_row.tolist()) - bridge.sd_specials))] if content else []


def test_a_new_bridge_is_one_function_and_one_registration_line(monkeypatch):
    import torch

    from photodialog.models.bridge import CaptionTokens, VocabularyBridge
    from photodialog.models.stgs import straight_through_gumbel_softmax
    from photodialog.models.tokenizers import add_photo_tokens, train_clip_tokenizer, train_llm_tokenizer

    corpus = ["a red car at the beach", "a purple fish in the snow", "a blue house in the city"] * 20
    llm_tok, sd_tok = train_llm_tokenizer(corpus, 120), train_clip_tokenizer(corpus, 150, 16)
    add_photo_tokens(llm_tok)
    bridges = registry.Registry("bridge")
    for entry in registry.BRIDGES:
        bridges.add(entry.name, entry.target, entry.summary)
    bridges.add("first", f"{__name__}:first_token_blocks", "the first token only")  # the one line
    monkeypatch.setattr("photodialog.models.bridge.BRIDGES", bridges)

    text = "a red car at the beach"
    ids = llm_tok(text, add_special_tokens=False).input_ids
    bridge = VocabularyBridge("first", llm_tok, sd_tok)
    plan = bridge.plan([CaptionTokens(rows=list(range(len(ids))), llm_ids=ids, text=text)])
    logits = torch.randn(len(ids), len(llm_tok), requires_grad=True)
    embedding = torch.randn(len(sd_tok), 4, requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=1.0, generator=torch.Generator().manual_seed(0))
    out = bridge.inputs_embeds(plan, sample, embedding)
    assert torch.equal(out, torch.nn.functional.embedding(plan.sd_input_ids, embedding))  # forward unchanged
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), [logits])
    assert grad.abs().sum() > 0  # L_v's gradient reaches the LLM through the new matrix
    assert set(plan.gather_tokens.tolist()) == {ids[0]}  # ... through the first token's column only
    assert set(plan.gather_rows.tolist()) == set(range(len(ids)))  # pooled over every caption position


def test_the_shipped_examples_use_the_current_names():
    from pathlib import Path

    import photodialog

    package = Path(photodialog.__file__).parent
    files = [package.parents[1] / "README.md", *sorted((package / "configs").glob("*.yaml")), *sorted((package / "cli").rglob("*.py"))]
    old = ("--output-dir", "--scheduler", "--quiet", "eval.scheduler")
    found = [f"{path.name}: {line.strip()}" for path in files for line in path.read_text(encoding="utf-8").splitlines()
             if "photodialog " in line and any(flag in line.split() or f"{flag}=" in line for flag in old)]
    assert found == []


def test_model_train_is_now_model_trainable_and_the_old_name_still_reads(tmp_path):
    """One name per concept: the parts' training modes are `model.trainable.*` (beside the optimiser's `train.*`);
    the old section name still reads from overrides and from the config.yaml of older runs, with its removal version."""
    for override in ("model.train.llm=lora", "train.llm=lora"):
        with pytest.warns(FutureWarning, match="'model.train' is now 'model.trainable'; .* version 1.0 will refuse it"):
            assert load_config("tiny-e2e", [override]).model.trainable.llm == "lora"
    old_run = tmp_path / "config.yaml"
    old_run.write_text("model:\n  preset: tiny\n  train: {llm: lora, vae: frozen}\n", encoding="utf-8")
    with pytest.warns(FutureWarning, match="is now 'model.trainable'"):
        assert load_config(str(old_run)).model.trainable.llm == "lora"
    assert not hasattr(load_config("tiny-e2e").model, "train")

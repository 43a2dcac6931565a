"""The replication experiment's arms: the same pretrained start, and only the gradient path or the caption differs."""

from __future__ import annotations

import pytest
import torch

from photodialog.config import load_config
from photodialog.demo.arms import ARMS, parse_arms, run_name

SHORT_VISION = ["model.tiny.vision_pretrain_steps=2", "model.tiny.vision_pretrain_photos=64"]
FAST = ["train.batch_size=4", "train.micro_batch_size=4", "train.warmup_steps=1",
        "train.eval_every_epochs=1000", "train.early_stopping_patience=0", "train.save_every_steps=1", "model.image_loss_repeats=1"]


def arm_config(arm: str, world, *extra: str):
    return load_config("tiny-finetune", [f"data.path={world}", *FAST, *ARMS[arm].overrides, *extra])


@pytest.fixture(scope="module")
def world_with_probe(tiny_world, tmp_path_factory):
    """A copy of the tiny world with a probe: the pipeline arm reads context photos through it (its
    captioner). A copy, so that the shared world stays as other tests expect it."""
    import shutil

    from photodialog.data.synth.probe import train_probe

    world = tmp_path_factory.mktemp("probed") / "world"
    shutil.copytree(tiny_world, world)
    train_probe(world, epochs=2, threads=1, progress=False)
    return world


@pytest.mark.parametrize("arm, reaches_llm", [("paper", True), ("authors-code", True), ("aligned", True), ("no-bridge", False),
                                              ("pipeline", False), ("word", True), ("end-to-end-gold", True)])
def test_only_the_bridged_arms_put_image_loss_gradient_on_the_llm(world_with_probe, arm, reaches_llm):
    from photodialog.training.inspect import gradient_report

    tiny_world = world_with_probe
    report = gradient_report(arm_config(arm, tiny_world))
    norms = report["image_loss_grad_norm"]
    assert report["image_loss"] is not None and norms["unet"] > 0  # L_v exists and trains the generator in every arm
    if reaches_llm:
        assert norms["llm"] > 0
    else:
        assert norms["llm"] == 0.0  # exactly zero, not small


def test_the_default_arms_are_the_four_of_the_replication_with_their_settings():
    """The reference, the paper, the authors' code and the word-level bridge; every one trains the
    generator on gold captions only (own captions train the LLM alone) and loads as a valid config."""
    from photodialog.demo.arms import DEFAULT_ARMS, REFERENCE

    assert DEFAULT_ARMS == ("no-bridge", "paper", "authors-code", "aligned") and REFERENCE == "no-bridge"
    settings = {arm: load_config("tiny-finetune", list(ARMS[arm].overrides)) for arm in DEFAULT_ARMS}
    assert all(c.model.own_caption_path == "llm_only" and c.model.own_caption_weight == 10.0 for c in settings.values())
    paper, authors, aligned = settings["paper"], settings["authors-code"], settings["aligned"]
    assert (paper.model.bridge, paper.model.pooling, paper.model.gumbel_noise, paper.model.caption_source) == ("sentence", "mean", True, "sampled")
    assert (authors.model.bridge, authors.model.pooling, authors.model.gumbel_noise, authors.model.caption_source) == ("sentence", "sum", False, "argmax")
    assert authors.train.tau_start == authors.train.tau_end == 1.0
    # aligned differs from the authors' code in the bridge alone
    assert aligned.model.bridge == "aligned" and aligned.model.gumbel_noise is False and aligned.model.caption_source == "argmax"
    assert aligned.train.tau_start == aligned.train.tau_end == 1.0
    assert settings["no-bridge"].model.bridge == "none"


@pytest.fixture(scope="module")
def pretrained(tiny_world, tmp_path_factory):
    """The demo's pretraining run (the LLM and the perceptron), two steps; its base's generator is the bundled one."""
    from photodialog.training.trainer import Trainer

    root = tmp_path_factory.mktemp("pretrain")
    # the perceptron's classifier pretraining cut to 2 steps too (the recipe's 8,000 take minutes)
    config = load_config("tiny-pretrain-text", [f"data.path={tiny_world}", *FAST, "train.max_steps=2", *SHORT_VISION])
    Trainer(config, root / "tiny-pretrain-text", progress=False).run()
    return [root / "tiny-pretrain-text"]


def _start(arm: str, seed: int, world, pretrained, run_dir):
    from photodialog.system import build_system

    config = arm_config(arm, world, f"model.init_from=[{', '.join(map(str, pretrained))}]", f"train.seed={seed}")
    return build_system(config, run_dir).model.state_dict()


def test_every_arm_and_seed_starts_from_byte_identical_pretrained_weights(world_with_probe, pretrained, tmp_path):
    from safetensors.torch import load_file

    tiny_world = world_with_probe
    starts = [_start(arm, seed, tiny_world, pretrained, tmp_path / f"{arm}-{seed}") for arm in ("paper", "no-bridge", "pipeline")
              for seed in (0, 1)]
    first = starts[0]
    for other in starts[1:]:
        assert set(other) <= set(first)  # the pipeline builds no perceptron; every other tensor is shared
        assert all(torch.equal(first[name], other[name]) for name in other)
    assert not any(name.startswith("perceptron.") for name in starts[-1]) and len(starts[1]) == len(first)
    # ... and those weights are the pretraining run's (its weight average) and the bundled generator's,
    # not a fresh initialisation.
    from photodialog.models.tiny_generator import BUNDLED_GENERATOR

    text_weights = load_file(str(sorted((pretrained[0] / "checkpoints").glob("step-*"))[-1] / "ema.safetensors"))
    name = next(n for n in text_weights if n.startswith("llm."))
    assert torch.equal(first[name], text_weights[name])
    unet = load_file(str(BUNDLED_GENERATOR / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(first[f"generator.unet.{n}"], unet[n]) for n in unet)


def test_the_shipped_start_and_an_export_of_a_pretraining_run_start_every_arm_from_their_weights(pretrained, world_with_probe, tmp_path):
    """model.init_from names a run, an export of it (the same weights) or `bundled` (assets/tiny-llm)."""
    from safetensors.torch import load_file

    from photodialog.export import export_checkpoint
    from photodialog.warm_start import BUNDLED_TEXT

    export_checkpoint(pretrained[0], tmp_path / "export", progress=False)
    from_run = _start("paper", 0, world_with_probe, pretrained, tmp_path / "a")
    from_export = _start("paper", 0, world_with_probe, [tmp_path / "export"], tmp_path / "b")
    assert from_run.keys() == from_export.keys()
    assert all(torch.equal(from_run[n], from_export[n]) for n in from_run)
    shipped = build_shipped_start(world_with_probe, tmp_path / "c")
    llm = load_file(str(BUNDLED_TEXT / "llm" / "model.safetensors"))
    assert llm and all(torch.equal(shipped[f"llm.{n}"], llm[n]) for n in llm)
    extra = load_file(str(BUNDLED_TEXT / "trainable.safetensors"))
    assert extra and all(torch.equal(shipped[n], extra[n]) for n in extra if n in shipped)


def build_shipped_start(world, run_dir):
    from photodialog.system import build_system

    return build_system(arm_config("paper", world), run_dir).model.state_dict()


def test_different_training_seeds_give_different_weights(tiny_world, pretrained, tmp_path):
    from photodialog.checkpoints import list_checkpoints
    from safetensors.torch import load_file

    from photodialog.training.trainer import Trainer

    weights = []
    for seed in (0, 1):
        config = arm_config("paper", tiny_world, f"model.init_from=[{', '.join(map(str, pretrained))}]",
                            f"train.seed={seed}", "train.max_steps=2", "train.ema_decay=0")
        run = tmp_path / run_name("paper", seed)
        Trainer(config, run, progress=False).run()
        weights.append(load_file(str(list_checkpoints(run)[-1] / "trainable.safetensors")))
    changed = [n for n in weights[0] if not torch.equal(weights[0][n], weights[1][n])]
    assert changed and any(n.startswith("llm.") for n in changed) and any(n.startswith("generator.unet.") for n in changed)


def test_a_missing_pretraining_run_is_named(tiny_world, tmp_path):
    from photodialog.errors import UserError
    from photodialog.system import build_system

    config = arm_config("paper", tiny_world, f"model.init_from=[{tmp_path / 'nowhere'}]")
    with pytest.raises(UserError, match="init_from: .*nowhere.* was not found"):
        build_system(config, tmp_path / "run")


def test_arms_parse_with_the_defaults_first_and_unknown_names_refused():
    assert parse_arms([]) == ["no-bridge", "paper", "authors-code", "aligned"]
    assert parse_arms(["exact", "pipeline"]) == ["no-bridge", "paper", "authors-code", "aligned", "pipeline", "exact"]
    with pytest.raises(ValueError, match="unknown arm"):
        parse_arms(["joint"])

"""The trainer's behaviour: learning, errors before work, NaN handling, logs and run files."""

from __future__ import annotations

import json
import math

import pytest
import torch

from photodialog.checkpoints import list_checkpoints
from photodialog.cli.main import main
from photodialog.training.run_files import read_metrics


def test_text_and_image_loss_fall_over_a_short_run(tmp_path, quick_args):
    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=24", "train.micro_batch_size=8", "train.batch_size=8", "train.warmup_steps=4"),
                 "--output-dir", str(run)]) == 0
    rows = read_metrics(run, "train")
    first, last = rows[:4], rows[-4:]
    mean = lambda rs, key: sum(r[key] for r in rs) / len(rs)  # noqa: E731
    assert mean(last, "text_loss") < mean(first, "text_loss") - 0.5
    # The diffusion loss draws a noise level per photo, so single steps jump around (0.004 to 0.34
    # in this run); the mean of the last steps is still clearly below that of the first (~0.15 vs ~0.25).
    assert all(r["image_loss"] > 0 for r in rows)
    assert mean(last, "image_loss") < mean(first, "image_loss")
    assert mean(last, "loss") < mean(first, "loss")
    assert all({"loss", "tau", "lr", "step"} <= r.keys() for r in rows)
    assert rows[-1]["tau"] < rows[0]["tau"]  # annealing from 1 towards 0.01


def test_run_folder_holds_config_environment_logs(tmp_path, quick_args):
    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=1"), "--output-dir", str(run)]) == 0
    for name in ("config.yaml", "environment.json", "train.log", "metrics.jsonl", "tensorboard", "base"):
        assert (run / name).exists(), name
    assert "torch" in json.loads((run / "environment.json").read_text())["packages"]
    assert (run / "checkpoints" / "best").is_file()


@pytest.mark.parametrize("override, key", [
    ("train.no_such_key=1", "train.no_such_key"),
    ("max_steps=ten", "train.max_steps"),
    ("model.bridge=dense", "model.bridge"),
    ("data.path=/no/such/folder", "data.path"),
])
def test_config_errors_stop_before_any_work(tmp_path, quick_args, capsys, override, key):
    run = tmp_path / "run"
    assert main(["train", *quick_args(override), "--output-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert key.split(".")[-1] in err
    assert not list_checkpoints(run)
    assert not run.exists()  # not even the run folder: nothing to clean up after a typo


def test_fewer_samples_than_one_optimizer_step_stop_before_training(tmp_path, quick_args, capsys):
    # 4096 = 1024 micro-batches of 4, more than the tiny world has: no optimizer step could run.
    run = tmp_path / "run"
    assert main(["train", *quick_args("train.batch_size=4096", "train.early_stopping_patience=0"), "--output-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "train.batch_size=4096" in err and "fewer than one optimizer step" in err
    assert not list_checkpoints(run)


def test_without_a_dev_split_the_run_goes_to_max_steps_and_keeps_the_last(tmp_path, quick_args):
    from photodialog.checkpoints import best_checkpoint, read_state

    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=3", "data.dev_split=no_such_split", "train.eval_every_steps=1",
                                      "train.early_stopping_patience=1"), "--output-dir", str(run)]) == 0
    state = read_state(list_checkpoints(run)[-1])
    assert state.step == 3 and state.stop_reason == "max_steps"
    assert state.evals_without_improvement == 0 and not state.history
    assert read_state(best_checkpoint(run)).step == 3


def test_nan_losses_are_skipped_then_stop_the_run(tmp_path, quick_args, monkeypatch, capsys):
    from photodialog.models.dialogue_model import LossOutput, PhotoDialogModel

    real_forward = PhotoDialogModel.forward
    calls = {"n": 0}

    def flaky(self, batch, **kwargs):
        out = real_forward(self, batch, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2 or calls["n"] >= 4:  # one bad step, then a streak of them
            return LossOutput(loss=out.loss * float("nan"), text_loss=out.text_loss, image_loss=out.image_loss, stats=out.stats)
        return out

    monkeypatch.setattr(PhotoDialogModel, "forward", flaky)
    run = tmp_path / "run"
    code = main(["train", *quick_args("max_steps=20", "train.save_every_steps=1", "train.max_bad_steps_in_row=3"), "--output-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 4  # stopped on purpose: its own documented exit code
    assert "NaN or Inf" in err and "intact" in err
    checkpoints = list_checkpoints(run)
    assert checkpoints and json.loads((checkpoints[-1] / "state.json").read_text())["step"] == 2
    from safetensors.torch import load_file

    weights = load_file(str(checkpoints[-1] / "trainable.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_skipped_step_is_neither_evaluated_nor_saved_twice(tmp_path, quick_args, monkeypatch):
    from photodialog.models.dialogue_model import LossOutput, PhotoDialogModel
    from photodialog import checkpoints as checkpoint

    real_forward, real_save = PhotoDialogModel.forward, checkpoint.save_checkpoint
    training_calls, saved_steps = [], []

    def second_training_step_is_nan(self, batch, **kwargs):
        out = real_forward(self, batch, **kwargs)
        if self.training:  # the dev evaluation's forward passes run in eval mode
            training_calls.append(1)
            if len(training_calls) == 2:
                return LossOutput(loss=out.loss * float("nan"), text_loss=out.text_loss, image_loss=out.image_loss, stats=out.stats)
        return out

    def counted_save(run_dir, weights, optimizer, scheduler, state, *args, **kwargs):
        saved_steps.append(state.step)
        return real_save(run_dir, weights, optimizer, scheduler, state, *args, **kwargs)

    monkeypatch.setattr(PhotoDialogModel, "forward", second_training_step_is_nan)
    monkeypatch.setattr(checkpoint, "save_checkpoint", counted_save)
    run = tmp_path / "run"
    # Every step is both an evaluation and a save step.
    assert main(["train", *quick_args("max_steps=3", "train.save_every_steps=1", "train.eval_every_steps=1",
                                      "eval.max_samples=2", "eval.diffusion_steps=1", "eval.max_new_tokens=2"),
                 "--output-dir", str(run)]) == 0
    assert len(training_calls) == 4  # three steps and the skipped one
    assert [row["step"] for row in read_metrics(run, "dev")] == [1, 2, 3]
    assert saved_steps == [1, 2, 3]
    assert json.loads((list_checkpoints(run)[-1] / "state.json").read_text())["stop_reason"] == "max_steps"


def test_every_shipped_recipe_validates_and_documents_its_command():
    from pathlib import Path

    from photodialog.config import load_config

    recipes = sorted((Path(__file__).parents[2] / "src" / "photodialog" / "configs").glob("*.yaml"))
    assert recipes
    for recipe in recipes:
        load_config(str(recipe))
        header = [line for line in recipe.read_text().splitlines() if line.startswith("#")]
        assert any("photodialog train" in line for line in header), f"{recipe.name}: header must show the command"


def test_tau_schedule_shapes():
    from photodialog.training.schedules import tau_at

    assert tau_at(0, start=1, end=0.01, anneal_steps=100) == 1
    assert tau_at(50, start=1, end=0.01, anneal_steps=100) == pytest.approx(0.505)
    assert tau_at(50, start=1, end=0.01, anneal_steps=100, shape="exponential") == pytest.approx(0.1)
    assert tau_at(500, start=1, end=0.01, anneal_steps=100) == 0.01
    assert not math.isnan(tau_at(3, start=1, end=0.01, anneal_steps=0))


def test_dev_evaluation_scores_bleu_and_image_and_keeps_the_best(tmp_path, quick_args):
    from photodialog.checkpoints import best_checkpoint, read_state

    run = tmp_path / "run"
    assert main(["train", *quick_args("max_steps=4", "train.eval_every_steps=2", "train.eval_every_epochs=1",
                                      "eval.max_samples=8", "eval.diffusion_steps=2", "eval.max_new_tokens=6"),
                 "--output-dir", str(run)]) == 0
    dev = read_metrics(run, "dev")
    assert [row["step"] for row in dev] == [2, 4]
    for row in dev:
        assert {"dev_bleu2", "dev_image", "selection", "dev_loss"} <= row.keys()
        assert row["selection"] == pytest.approx(row["dev_bleu2"] / 100 + row["dev_image"])
    best = best_checkpoint(run)
    assert read_state(best).step == max(dev, key=lambda r: r["selection"])["step"]


def _generator_after(tmp_path, quick_args, final_weights, name, *overrides):
    run = tmp_path / name
    assert main(["train", *quick_args("max_steps=2", "model.bridge=none", "model.caption_source=gold", "train.grad_clip=0.5",
                                      *overrides), "--output-dir", str(run)]) == 0
    weights = final_weights(run)
    generator = {k: v for k, v in weights.items() if k.startswith("generator.")}
    assert generator and len(generator) < len(weights)
    return generator, read_metrics(run, "train")


def test_per_part_clipping_keeps_the_generator_apart_from_the_llm(tmp_path, quick_args, final_weights):
    """With L_v giving the LLM nothing (bridge none, gold captions), the generator's weights are bit for bit
    the same whether L_t's gradient on the LLM is small or large, once each part is clipped on its own
    norm; with one norm over all (the default) a large LLM gradient scales the generator's step down."""
    small, rows = _generator_after(tmp_path, quick_args, final_weights, "small", "train.grad_clip_per_part=true")
    large, _ = _generator_after(tmp_path, quick_args, final_weights, "large", "train.grad_clip_per_part=true",
                                "train.text_loss_weight=100")
    assert small.keys() == large.keys()
    assert all(torch.equal(small[k], large[k]) for k in small)
    assert {"grad_norm", "grad_norm_llm", "grad_norm_generator"} <= rows[0].keys()
    shared_small, rows = _generator_after(tmp_path, quick_args, final_weights, "shared-small")
    shared_large, _ = _generator_after(tmp_path, quick_args, final_weights, "shared-large", "train.text_loss_weight=100")
    assert not all(torch.equal(shared_small[k], shared_large[k]) for k in shared_small)
    assert "grad_norm_llm" not in rows[0]


def test_with_llm_only_own_captions_and_per_part_clipping_the_generator_is_the_same_under_every_bridge(
        tmp_path, quick_args, final_weights):
    """The arms' generators share nothing but their inputs: the own caption's L_v reaches the LLM
    only, the gold caption's the generator only, each part clipped on its own norm."""
    common = ("model.caption_source=sampled", "model.own_caption_path=llm_only", "train.grad_clip_per_part=true")
    weights = {}
    for bridge in ("none", "aligned"):
        run = tmp_path / bridge
        assert main(["train", *quick_args("max_steps=2", "train.grad_clip=0.5", f"model.bridge={bridge}", *common),
                     "--output-dir", str(run)]) == 0
        weights[bridge] = final_weights(run)
        assert all(r["own_caption_loss"] > 0 for r in read_metrics(run, "train"))
    generator = [k for k in weights["none"] if k.startswith("generator.")]
    assert generator and all(torch.equal(weights["none"][k], weights["aligned"][k]) for k in generator)
    llm = [k for k in weights["none"] if k.startswith("llm.")]
    assert not all(torch.equal(weights["none"][k], weights["aligned"][k]) for k in llm)  # the bridge trained the LLM


@pytest.mark.parametrize("engine", ["fsdp", "deepspeed-zero2", "deepspeed-zero3"])
def test_per_part_clipping_is_refused_where_the_engine_clips(tmp_path, tiny_world, monkeypatch, engine):
    from photodialog.config import load_config
    from photodialog.errors import UserError
    from photodialog.training import engines
    from photodialog.training.trainer import Trainer

    monkeypatch.setattr(engines, "engine_of", lambda accelerator: engines.Engine(engine, 1))
    config = load_config("tiny-e2e", [f"data.path={tiny_world}", "train.grad_clip_per_part=true"])
    with pytest.raises(UserError, match=f"grad_clip_per_part works with one process or DDP; under {engine}"):
        Trainer(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()

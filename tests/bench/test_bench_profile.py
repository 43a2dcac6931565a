"""`photodialog bench step --profile`: forward and backward time land on the part that ran them."""

from __future__ import annotations

import json

import pytest
import torch

from photodialog.bench.profile import profile_step
from photodialog.cli.main import main
from photodialog.models.profiling import part


class TwoParts:
    """A cheap "llm" and an expensive "unet" (about 12,000x the multiply-adds, so that the check
    holds on a busy machine too), stepped like TrainStep."""

    def __init__(self):
        torch.manual_seed(0)
        self.small, self.big = torch.nn.Linear(16, 16), torch.nn.Linear(1024, 1024)
        self.x = torch.randn(256, 16)
        self.lift = torch.randn(16, 1024)

    def __call__(self):
        with part("forward"):
            with part("llm"):
                h = self.small(self.x)
            lifted = h @ self.lift  # unlabelled: "forward (other)"
            with part("diffusion_loss"):
                with part("unet"):
                    y = self.big(self.big(self.big(lifted)))
                loss = y.pow(2).mean()
        with part("backward"):
            loss.backward()


def test_forward_and_backward_go_to_the_part_that_ran_them():
    result = profile_step(TwoParts(), steps=3, warmup=1, device="cpu")
    items = {i["item"]: i for i in result["items"]}
    for name in ("llm forward", "llm backward", "unet forward", "unet backward", "forward (other)"):
        assert name in items, name
    assert items["unet forward"]["ms"] > 5 * items["llm forward"]["ms"]
    assert items["unet backward"]["ms"] > 5 * items["llm backward"]["ms"]
    # The nested unet range is not counted again in diffusion_loss, which keeps only pow and mean.
    assert items.get("diffusion_loss forward", {"ms": 0})["ms"] < items["unet forward"]["ms"]
    # Every item is a share of the profiled step, and together with the unlabelled rest they make it up.
    assert sum(i["ms"] for i in result["items"]) == pytest.approx(result["profiled_step_ms"], rel=1e-3)
    assert all(i["share"] == pytest.approx(i["ms"] / result["profiled_step_ms"], abs=1e-3) for i in result["items"])
    assert [i["ms"] for i in result["items"]] == sorted((i["ms"] for i in result["items"]), reverse=True)


def test_scalar_reads_are_counted_where_they_happen():
    def step():
        with part("bridge"):
            t = torch.arange(5)
            int(t.sum()), t.max().item()
        with part("llm"):
            torch.ones(3).sum()

    result = profile_step(step, steps=2, warmup=0, device="cpu")
    syncs = result["host_syncs"]
    assert syncs["scalar_reads_by_range"] == {"bridge": 2.0}
    assert syncs["device_syncs_per_step"] is None  # no GPU: nothing to wait for


def test_labels_cost_nothing_outside_a_profiler():
    import contextlib

    assert isinstance(part("llm"), contextlib.nullcontext)


STANDIN = ["bench", "step", "--preset", "paper", "--random-weights", "--standin-sizes", "--device", "cpu", "--threads", "1",
           "--batch-size", "2", "--seq-len", "16", "--steps", "1", "--warmup", "0", "--profile"]


def test_paper_path_profile_json_names_every_part(tmp_path):
    out = tmp_path / "profile.json"
    assert main([*STANDIN, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "step-profile" and result["preset"] == "paper"
    names = {i["item"] for i in result["items"]}
    # Frozen ViT/Q-Former and the trainable projection, VAE (frozen: forward only), text encoder, UNet, bridge, LLM.
    for name in ("llm forward", "llm backward", "perceptron forward", "vae_encode forward", "text_encoder forward",
                 "text_encoder backward", "unet forward", "unet backward", "bridge forward", "optimizer", "data"):
        assert name in names, name
    assert "vae_encode backward" not in names
    for item in result["items"]:
        assert set(item) >= {"item", "part", "phase", "ms", "share", "what"}
    assert result["step_ms_unprofiled"]["median_ms"] > 0 and result["profiled_step_ms"] > 0
    assert result["time_basis"].startswith("CPU wall time")


def test_every_part_runs_sdpa_attention(tiny_world, tmp_path):
    """Llama, BLIP-2's ViT and Q-Former and CLIP's text encoder on torch's SDPA; UNet and VAE on
    diffusers' SDPA processor: for the paper's parts built from configs and the tiny ones loaded
    from their saved folders (the loading path the paper's checkpoints take)."""
    from photodialog.bench import tiny_setup
    from photodialog.bench.paper import attention_implementations, build_paper_model
    from photodialog.bench.paper_configs import standin

    paper = attention_implementations(build_paper_model(standin(), "cpu"))
    setup = tiny_setup.prepare(tmp_path / "run", str(tiny_world))
    loaded = attention_implementations(tiny_setup.build(setup, ["model.trainable.perceptron=frozen"]).model)
    for found in (paper, loaded):
        assert {found[k] for k in ("llm", "vision", "qformer", "text_encoder")} == {"sdpa"}, found
        assert found["unet"] == ["AttnProcessor2_0"], found
    assert paper["vae"] == ["AttnProcessor2_0"]


def test_paper_compare_times_baseline_and_speed_settings_in_turns(capsys):
    args = [a for a in STANDIN if a != "--profile"] + ["--compare-baseline", "--steps", "2", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["benchmark"] == "step-compare"
    assert set(result["speed"]["cached"]) == {"latents", "perceptron"} and result["speed"]["baseline"] is False
    before, after = result["before"]["time"], result["after"]["time"]
    assert before["repeats"] == after["repeats"] == 2
    assert result["speedup_before_over_after"] == pytest.approx(before["median_ms"] / after["median_ms"], rel=1e-3)
    assert result["model_flops_per_step"] > 0


def test_profile_and_compare_together_are_refused(capsys):
    assert main([*STANDIN, "--compare-baseline"]) == 2
    assert "choose one" in capsys.readouterr().err

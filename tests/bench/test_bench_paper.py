"""The paper preset: refuses on a CPU at once; its code path builds and steps at stand-in sizes;
the full-size configs give the published parameter counts (built on the meta device, no memory)."""

from __future__ import annotations

import json

import pytest
import torch

from photodialog.cli.main import main

STANDIN = ["bench", "step", "--preset", "paper", "--random-weights", "--standin-sizes", "--device", "cpu", "--threads", "1",
           "--batch-size", "2", "--seq-len", "16", "--steps", "1", "--warmup", "0", "--json"]


def test_refuses_on_cpu_with_exit_2(capsys):
    assert main(["bench", "step", "--preset", "paper", "--random-weights", "--device", "cpu"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


@pytest.fixture(scope="module")
def standin_result():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(STANDIN) == 0
    return json.loads(buffer.getvalue())


def test_standin_steps_and_reports(standin_result):
    r = standin_result
    assert r["preset"] == "paper" and r["architecture"].startswith("stand-in")
    assert r["time"]["median_ms"] > 0 and r["tokens_per_second"] > 0
    assert r["mfu"] is None and r["peak_source"] == "no GPU"  # no MFU without a known peak
    forward = r["forward_flops_per_part"]
    assert all(forward[part] > 0 for part in ("llm", "perceptron", "text_encoder", "unet", "vae"))
    assert r["model_flops_per_step"] > sum(forward.values())  # backward counted too
    # The recipe checkpoints gradients: the recomputed forwards count as hardware FLOPs only.
    assert r["recipe"]["gradient_checkpointing"] is True
    assert r["hardware_flops_per_step"] > r["model_flops_per_step"]


def test_standin_trains_as_the_recipe(standin_result):
    p = standin_result["parameters"]
    assert 0 < p["llm"]["trainable"] < p["llm"]["parameters"]  # LoRA + embeddings + LM head
    assert p["unet"]["trainable"] == p["unet"]["parameters"]
    assert p["text_encoder"]["trainable"] == 0 and p["vae"]["trainable"] == 0
    assert 0 < p["perceptron"]["trainable"] < p["perceptron"]["parameters"]  # the new projection only


def test_image_loss_reaches_the_llm_through_the_bridge():
    from photodialog.bench.paper import PaperStepSettings, build_paper_model, synthetic_batch
    from photodialog.bench.paper_configs import standin

    torch.manual_seed(0)
    arch = standin()
    model = build_paper_model(arch, "cpu")
    batch = synthetic_batch(model, arch, PaperStepSettings(batch_size=2, seq_len=16, image_targets=1, device="cpu"), "cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch, tau=1.0)
    out.image_loss.backward()
    grad = model.llm.get_output_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_full_size_configs_give_the_published_parameter_counts():
    from photodialog.bench.paper import build_paper_model, parameter_summary
    from photodialog.bench.paper_configs import PaperArchitecture

    counts = parameter_summary(build_paper_model(PaperArchitecture(), "meta"))
    millions = {part: value["parameters"] / 1e6 for part, value in counts.items()}
    # Llama-2-7B 6,738M (+ 2 token rows x 2 and LoRA r 32 on q/k/v: 25M); SD 2.1 UNet 865.9M, VAE 83.65M;
    # OpenCLIP-H text tower 340.4M without its projection; EVA ViT-g/14 ~986M + Q-Former ~105M + projection.
    assert millions["llm"] == pytest.approx(6738.4 + 0.016 + 25.2, abs=1.0)
    assert millions["unet"] == pytest.approx(865.9, abs=0.1)
    assert millions["vae"] == pytest.approx(83.65, abs=0.1)
    assert millions["text_encoder"] == pytest.approx(340.4, abs=0.5)
    assert 1080 < millions["perceptron"] < 1110
    lora = counts["llm"]["trainable"] - 2 * 32_002 * 4096
    assert lora == 32 * 3 * 2 * 32 * 4096  # r 32 on q, k, v of 32 layers

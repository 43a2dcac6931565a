"""Memory to load and train a paper setting, counted from parameters on the meta device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photodialog.bench.load_memory import SETTINGS, setting_memory

MEASURED = Path(__file__).resolve().parents[2] / "docs" / "bench-gpu" / "paper-step.json"


def test_authors_setting_matches_the_weights_and_state_measured_on_a_gpu():
    spec = SETTINGS["authors' code (LoRA LLM, frozen ViT/Q-Former and text encoder)"]
    counted = setting_memory(**spec)
    measured = json.loads(MEASURED.read_text())  # an H200 run of `bench step --preset paper --random-weights`
    assert counted["at_rest_bytes"] == measured["weights_and_optimizer_bytes"]  # the old key held the weights alone
    # What the GPU held before the step: weights + AdamW state (gradients are freed by zero_grad(set_to_none)).
    held = measured["memory"]["held_before_step_bytes"]
    assert abs(counted["at_rest_bytes"] + counted["adamw_state_bytes"] - held) / held < 0.01
    assert counted["gpu_before_activations_bytes"] == counted["at_rest_bytes"] + 12 * counted["trainable"]
    # Reading BLIP-2 (float32 ViT + float32 shards) beside the bf16 LLM is the host's peak, not the weights at rest.
    assert counted["host_ram_to_load_bytes"] > counted["at_rest_bytes"]


@pytest.mark.slow
def test_cli_writes_every_setting(tmp_path):
    from photodialog.cli.main import main

    out = tmp_path / "memory.json"
    assert main(["bench", "memory", "--out", str(out)]) == 0
    settings = json.loads(out.read_text())["settings"]
    assert set(settings) == set(SETTINGS)
    full = settings["paper (every part but the VAE trains in full, section 2.5)"]
    assert full["gpu_before_activations_bytes"] > 141e9  # the paper's full fine-tuning does not fit one H200

"""`photodialog bench step` (tiny preset): same weights and batch in both settings, JSON, ratio."""

from __future__ import annotations

import json

import pytest
import torch

from photodialog.cli.main import main

SMALL = ["--batch-size", "4", "--steps", "1", "--warmup", "0", "--threads", "1", "model.image_loss_repeats=1"]


@pytest.fixture(scope="module")
def step_json(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "step.json"
    assert main(["bench", "step", "--data", str(tiny_world), "--out", str(out), *SMALL]) == 0
    return json.loads(out.read_text())


def test_both_settings_are_timed_and_measured(step_json):
    assert step_json["preset"] == "tiny"
    for setting in ("end_to_end", "pipeline"):
        assert step_json[setting]["time"]["repeats"] == 1 and step_json[setting]["time"]["median_ms"] > 0
        memory = step_json[setting]["memory"]
        assert memory["peak_bytes"] > 0 and memory["weights_bytes"] > 0 and memory["optimizer_state_bytes"] > 0
    assert step_json["batch"]["samples"] == 4
    assert step_json["model"]["image_loss_repeats"] == 1 and step_json["model"]["tiny"]["image_size"] > 0  # the override applies


def test_ratio_and_target_follow_from_the_medians(step_json):
    ratio = step_json["end_to_end"]["time"]["median_ms"] / step_json["pipeline"]["time"]["median_ms"]
    assert step_json["time_ratio_end_to_end_over_pipeline"] == pytest.approx(ratio, rel=1e-3)
    assert step_json["targets"]["time_ratio"]["met"] == (step_json["time_ratio_end_to_end_over_pipeline"] <= 1.10)
    # The same parts: the bridge adds no weights, and both hold the same optimizer state.
    assert step_json["end_to_end"]["memory"]["weights_bytes"] == step_json["pipeline"]["memory"]["weights_bytes"]


def test_the_two_settings_share_weights_and_batch_but_not_the_bridge(tiny_world, tmp_path):
    from photodialog.bench.step import StepBenchSettings, build_pair

    e2e, pipeline, batch = build_pair(StepBenchSettings(data=str(tiny_world), batch_size=4), tmp_path / "run")
    for field in ("input_ids", "labels", "target_pixels"):
        assert torch.equal(getattr(e2e.batch, field), getattr(pipeline.batch, field)), field
    for (name, a), (_, b) in zip(e2e.model.state_dict().items(), pipeline.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert e2e.model.bridge.mode == "sentence" and pipeline.model.bridge.mode == "none"


def test_paper_preset_without_random_weights_is_refused(capsys):
    assert main(["bench", "step", "--preset", "paper"]) == 2
    assert "--random-weights" in capsys.readouterr().err


def test_an_unknown_device_is_a_message_not_a_traceback(capsys):
    from photodialog.cli.main import main

    assert main(["bench", "chat", "--device", "nonsense"]) == 2
    assert "unknown device 'nonsense'" in capsys.readouterr().err


def test_negative_threads_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "step", "--threads", "-1"])
    assert stopped.value.code == 2
    assert "--threads" in capsys.readouterr().err

"""`photodialog bench bridge` at tiny sizes: JSON structure, agreement of the methods, ratios, targets."""

from __future__ import annotations

import json

import pytest

from photodialog.cli.main import main
MODES = ["sentence", "word", "exact"]
# A bridge benchmark small enough for a test: every method runs, the dense one included.
TINY_BRIDGE_FLAGS = ["--captions", "3", "--caption-tokens", "4", "--width", "8", "--llm-vocab", "300", "--sd-vocab", "400",
                     "--sd-length", "16", "--repeats", "2", "--no-tiny-step", "--threads", "1"]


@pytest.fixture(scope="module")
def bridge_result():
    from photodialog.bench.bridge import BridgeBenchSettings, run_bridge_bench
    from photodialog.bench.vocab import VocabularySizes

    settings = BridgeBenchSettings(captions=3, caption_tokens=4, width=8, repeats=2, tiny_step=False,
                                   vocab=VocabularySizes(llm_vocab=300, sd_vocab=400, sd_max_length=16))
    return run_bridge_bench(settings)


def test_every_mode_has_every_method_and_they_agree(bridge_result):
    assert list(bridge_result["modes"]) == MODES
    for mode in MODES:
        result = bridge_result["modes"][mode]
        for method in ("bridge", "sparse_coo", "dense"):
            assert result[method]["time"]["median_ms"] > 0, (mode, method)
            assert result[method]["memory"]["peak_bytes"] > 0
        for method in ("sparse_coo", "dense"):
            check = result[method]["agreement_with_bridge"]
            assert check["output_max_abs_diff"] < 1e-5
            assert check["soft_grad_max_abs_diff"] <= 1e-5 * max(1.0, check["soft_grad_max_abs"])
        assert result["dense"]["ran"] and result["dense"]["reason"] == "fits"


def test_ratios_and_targets_follow_from_the_measurements(bridge_result):
    for mode in MODES:
        result = bridge_result["modes"][mode]
        expected = result["sparse_coo"]["time"]["median_ms"] / result["bridge"]["time"]["median_ms"]
        assert result["speedup_vs_sparse_coo"] == pytest.approx(expected, rel=1e-3)
        bridge = result["bridge"]
        assert bridge["extra_bytes"] == bridge["memory"]["peak_bytes"] + bridge["held_bytes"]
        checks = bridge_result["targets"][mode]
        assert checks["extra_memory_bytes"]["met"] == (bridge["extra_bytes"] < checks["extra_memory_bytes"]["limit"])
        assert checks["speedup_vs_sparse_coo"]["met"] == (result["speedup_vs_sparse_coo"] >= 10)
        assert "share_of_tiny_step" not in checks  # not measured here


def test_the_dynamic_bridge_holds_far_less_than_the_dense_matrices(bridge_result):
    for mode in ("sentence", "word"):
        result = bridge_result["modes"][mode]
        assert result["bridge"]["held_bytes"] < result["dense"]["matrix_bytes_per_caption_float32"]
        assert result["dense"]["memory"]["peak_bytes"] >= 3 * result["dense"]["matrix_bytes_per_caption_float32"]


def test_machine_and_method_are_recorded(bridge_result):
    machine = bridge_result["machine"]
    assert machine["logical_cores"] >= 1 and machine["torch_threads"] >= 1 and machine["cpu"]
    assert "TorchDispatchMode" in bridge_result["memory_method"]


def test_cli_writes_json_to_stdout_and_file(tmp_path, capsys):
    out = tmp_path / "bridge.json"
    assert main(["bench", "bridge", "--json", "--out", str(out), "--modes", "sentence", *TINY_BRIDGE_FLAGS]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert list(printed["modes"]) == ["sentence"] and printed["settings"]["captions"] == 3


def test_cli_summary_names_the_targets(capsys):
    assert main(["bench", "bridge", "--modes", "word", "--dense", "skip", *TINY_BRIDGE_FLAGS]) == 0
    text = capsys.readouterr().out
    assert "speedup_vs_sparse_coo" in text and "not run: skipped" in text


@pytest.mark.parametrize("flags", [["--modes", "none"], ["--modes", "aligned"], ["--modes", "bogus"], ["--captions", "0"],
                                   ["--sd-length", "2"]])
def test_cli_rejects_bad_input(flags, capsys):
    assert main(["bench", "bridge", *flags]) == 2
    assert "error:" in capsys.readouterr().err

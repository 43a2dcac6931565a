"""`photodialog bench chat` on the session's tiny checkpoint: forced token counts, cache, diffusion."""

from __future__ import annotations

import json

import pytest

from photodialog.cli.main import main


@pytest.fixture(scope="module")
def chat_json(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "chat.json"
    args = ["bench", "chat", "--checkpoint", str(tiny_run), "--new-tokens", "4", "--diffusion-steps", "2", "--repeats", "1",
            "--threads", "1", "--out", str(out)]
    assert main(args) == 0
    return json.loads(out.read_text())


def test_exactly_the_requested_tokens_are_generated(chat_json):
    text = chat_json["text"]
    assert text["new_tokens"] == 4 and text["tokens_generated"] == 4  # min_new_tokens holds the end token back
    for name in ("generate_with_kv_cache", "with_kv_cache", "without_kv_cache"):
        assert text[name]["tokens_per_second"] > 0
    assert text["cached_and_uncached_tokens_equal"]  # the no-cache loop really recomputes the same thing
    speedup = text["without_kv_cache"]["time"]["median_ms"] / text["with_kv_cache"]["time"]["median_ms"]
    assert text["kv_cache_speedup"] == pytest.approx(speedup, rel=1e-2)


def test_diffusion_and_turn_are_measured(chat_json):
    diffusion = chat_json["diffusion"]
    assert diffusion["steps"] == 2 and diffusion["image_size"] > 0 and diffusion["per_photo"]["median_ms"] > 0
    assert chat_json["context"]["photos"] >= 1  # the world's context photo goes through the perceptron
    expected = chat_json["text"]["generate_with_kv_cache"]["time"]["median_ms"] + diffusion["per_photo"]["median_ms"]
    assert chat_json["composed_turn_with_one_photo_ms"] == pytest.approx(expected, rel=1e-6)
    assert chat_json["turn"]["time"]["median_ms"] > 0


def test_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "chat", "--checkpoint", str(tmp_path / "missing"), "--threads", "1"]) != 0
    assert "error:" in capsys.readouterr().err

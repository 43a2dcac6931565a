"""`evaluate` on the tiny end-to-end run: a complete, valid result and the files next to it."""

from __future__ import annotations

import json

from evalloop_helpers import MAX_SAMPLES

from photodialog.evaluation.metrics import REQUIRED_METRICS, load_result
from photodialog.evaluation.attribute_metrics import GROUPS, all_probe_keys, group_keys
from photodialog.evaluation.runner import load_targets

TEXT_METRICS = ("bleu1", "bleu2", "rouge_l", "share_precision", "share_recall", "share_f1")


def test_result_has_every_table2_field_share_moment_and_both_seeds(e2e_eval):
    result = load_result(e2e_eval.paths.json)  # validate_result: every Table 2 + share-moment field
    assert result["seeds"] == [0, 1]
    assert [entry["seed"] for entry in result["per_seed"]] == [0, 1]
    assert set(REQUIRED_METRICS) <= set(result["aggregate"])
    for key in TEXT_METRICS:
        assert result["aggregate"][key]["available"], key
        assert result["aggregate"][key]["n"] == 2
    counts = result["per_seed"][0]["counts"]
    assert counts["text_turns"] == MAX_SAMPLES and counts["share_turns"] == MAX_SAMPLES
    assert counts["share_gold"] == 2
    assert result["data"]["dataset"] == "synthetic" and result["data"]["split"] == "test"
    assert result["data"]["targets"] == MAX_SAMPLES and result["data"]["reference_photos"] == 2
    assert result["model"]["name"] == "end-to-end" and result["model"]["kind"] == "end-to-end"


def test_without_inception_weights_is_and_fid_are_unavailable_with_reason_and_flag(e2e_eval):
    result = e2e_eval.result
    for key in ("is", "fid"):
        entry = result["aggregate"][key]
        assert entry["available"] is False
        assert "Inception weights" in entry["reason"]
        assert "--inception-weights" in entry["fix"]
    markdown = e2e_eval.paths.markdown.read_text(encoding="utf-8")
    assert "| end-to-end |" in markdown and "n/a [1]" in markdown and "--inception-weights" in markdown


def test_greedy_text_is_generated_once_and_reused_for_every_seed(e2e_eval, e2e_reply_calls):
    assert len(e2e_reply_calls) == 1 and e2e_reply_calls[0].decoding == "greedy"
    settings = e2e_eval.result["settings"]
    assert settings["decoding"] == "greedy" and settings["text_per_seed"] is False
    assert "only the diffusion noise" in settings["text_generation"]
    for key in TEXT_METRICS:
        values = e2e_eval.result["aggregate"][key]["values"]
        assert values[0] == values[1], key


def test_markdown_predictions_and_photos_lie_next_to_the_result(e2e_eval, eval_world):
    paths = e2e_eval.paths
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| Model | BLEU-1 | BLEU-2 | Rouge-L | IS | FID |" in markdown
    assert "| Model | share P | share R | share F1 |" in markdown
    assert "Per seed" in markdown and "text_generation" in markdown
    rows = [json.loads(line) for line in paths.predictions.read_text(encoding="utf-8").splitlines()]
    targets = load_targets(eval_world, "test", MAX_SAMPLES)
    assert [row["gold"] for row in rows] == [t.response.text for t in targets]
    assert [(row["dialogue_id"], row["turn_index"]) for row in rows] == [(t.dialogue_id, t.turn_index) for t in targets]
    for seed in (0, 1):
        assert paths.seed_photos(seed).is_dir()
        # The image generator alone draws every gold caption: 2 photo turns among the targets.
        assert len(list(paths.seed_photos(seed, gold_captions=True).glob("*.png"))) == 2


def test_probe_metrics_are_computed_on_a_synthetic_world(e2e_eval):
    aggregate, chance = e2e_eval.result["aggregate"], e2e_eval.result["chance"]
    assert set(all_probe_keys()) <= set(aggregate)
    for key in group_keys("generator") + ["probe_fid_generator"]:
        assert aggregate[key]["available"], key
        assert aggregate[key]["n"] == 2
    assert 0.0 <= aggregate["probe_acc_generator_object"]["mean"] <= 100.0
    assert chance["probe_acc_generator_object"] == 100.0 / 8  # 8 objects in the world
    assert e2e_eval.result["settings"]["probe"].endswith("world")
    # Columns keep the groups' order whichever were measured.
    probe_columns = [key for key in aggregate if key.startswith(("probe_", "photo_match_"))]
    assert probe_columns == all_probe_keys()
    # the primary endpoint of the demo: every gold photo turn counted (the 2 among the targets)
    assert aggregate["photo_match_colour"]["available"] and e2e_eval.result["per_seed"][0]["counts"]["photo_match_turns"] == 2
    assert list(GROUPS) == ["caption", "gold", "generator"]

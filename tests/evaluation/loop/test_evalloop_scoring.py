"""The scoring path with replies known in advance: an oracle that answers with the gold turn.

With the gold replies, the text metrics and the share moment are perfect, every gold photo
turn gets a generated photo, and the image generator draws the same captions with the same
noise as in the generator-only check, so those two groups of probe scores agree exactly. IS and
FID run through torch-fidelity with a tiny offline feature extractor standing in for Inception.
"""

from __future__ import annotations

import json

import pytest
from evalloop_helpers import FAST, MAX_SAMPLES, recording_replies

from photodialog.evaluation import evaluate as evaluate_module
from photodialog.evaluation.evaluate import evaluate
from photodialog.evaluation.attribute_metrics import KINDS
from photodialog.evaluation.eval_files import EvalRequest
from photodialog.models.generation import Reply
from photodialog.models.generation_settings import settings_from_config


def _gold_replies(system, samples, settings, **kwargs):
    return [Reply(text=s.response.text, captions=[p.caption for p in s.response.photos]) for s in samples]


@pytest.fixture(scope="module")
def oracle_eval(tiny_run, eval_world, tiny_extractor, tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setattr(evaluate_module, "generate_replies", _gold_replies)
    try:
        request = EvalRequest(checkpoint=str(tiny_run), data=str(eval_world), seeds=[0, 1],
                              out=str(tmp_path_factory.mktemp("oracle") / "test.json"), max_samples=MAX_SAMPLES,
                              generation=dict(FAST), feature_extractor=tiny_extractor, progress=False,
                              isc_splits=1)  # two photo turns: IS needs 2 photos per split
        return evaluate(request)
    finally:
        patch.undo()


def test_gold_replies_score_perfect_text_and_share_moment(oracle_eval, eval_world):
    from photodialog.data.schema import PHOTO_SPAN
    from photodialog.evaluation.runner import load_targets

    aggregate = oracle_eval.result["aggregate"]
    for key in ("bleu1", "bleu2", "share_precision", "share_recall", "share_f1"):
        assert aggregate[key]["mean"] == pytest.approx(100.0), key
    # ROUGE-L is a mean over turns, and a turn whose gold reply is a photo alone has no text left
    # once [IMG] spans are removed: the sentence LCS F1 of two empty texts is 0, every other turn 100.
    texts = [PHOTO_SPAN.sub("", t.response.text).strip() for t in load_targets(eval_world, "test", MAX_SAMPLES)]
    assert aggregate["rouge_l"]["mean"] == pytest.approx(100.0 * sum(map(bool, texts)) / len(texts))


def test_is_and_fid_are_computed_when_the_extractor_has_weights(oracle_eval):
    aggregate = oracle_eval.result["aggregate"]
    assert aggregate["is"]["available"] and aggregate["fid"]["available"]
    assert aggregate["is"]["n"] == 2 and aggregate["is"]["mean"] >= 1.0 and aggregate["fid"]["mean"] >= 0.0
    counts = oracle_eval.result["per_seed"][0]["counts"]
    assert counts["images_generated"] == 2 and counts["images_reference"] == 2  # one per photo turn


def test_generated_photos_are_saved_per_seed_and_named_in_the_predictions(oracle_eval):
    paths = oracle_eval.paths
    rows = [json.loads(line) for line in paths.predictions.read_text(encoding="utf-8").splitlines()]
    with_photos = [row for row in rows if "photos_by_seed" in row]
    assert len(with_photos) == 2
    for row in with_photos:
        assert "[IMG]" in row["gold"]
        for seed in ("0", "1"):
            assert (paths.folder / row["photos_by_seed"][seed]).is_file()


def test_caption_and_gold_groups_are_scored_and_agree_with_the_generator_check(oracle_eval):
    aggregate = oracle_eval.result["aggregate"]
    for kind in [*KINDS, "all"]:
        caption, gold, alone = (aggregate[f"probe_acc_{g}_{kind}"] for g in ("caption", "gold", "generator"))
        assert caption["available"] and gold["available"]
        # Same captions, same noise seeds: the same photos, so the same accuracies.
        assert caption["values"] == gold["values"] == alone["values"]
    assert aggregate["probe_fid"]["values"] == pytest.approx(aggregate["probe_fid_generator"]["values"])


def test_sampled_text_is_generated_anew_for_every_seed(tiny_run, eval_world, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(evaluate_module, "generate_replies", recording_replies(calls))
    request = EvalRequest(checkpoint=str(tiny_run), data=str(eval_world), seeds=[0, 1], out=str(tmp_path / "s.json"),
                          max_samples=3, generation={**FAST, "decoding": "sample"}, progress=False)
    outputs = evaluate(request)
    assert [(settings.decoding, settings.seed) for settings in calls] == [("sample", 0), ("sample", 1)]
    assert outputs.result["settings"]["text_per_seed"] is True
    rows = [json.loads(line) for line in outputs.paths.predictions.read_text(encoding="utf-8").splitlines()]
    assert all(set(row["predicted_by_seed"]) == {"0", "1"} for row in rows)


def test_generation_settings_start_from_the_checkpoint_config_and_refuse_bad_values():
    from photodialog.config import EvalConfig
    from photodialog.errors import UserError

    settings = settings_from_config(EvalConfig(), {"decoding": "beam", "diffusion_steps": None})
    assert (settings.decoding, settings.num_beams, settings.max_new_tokens, settings.diffusion_steps) == ("beam", 2, 30, 20)
    with pytest.raises(UserError, match="at least 2 beams"):
        settings_from_config(EvalConfig(), {"decoding": "beam", "num_beams": 1})
    with pytest.raises(UserError, match="sampler"):
        settings_from_config(EvalConfig(), {"sampler": "nope"})

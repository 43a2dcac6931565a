"""The demo report's numbers on hand-made eval results: means over training seeds, differences, checks."""

from __future__ import annotations

import pytest

from photodialog.demo.intervals import BETTER, SAME
from photodialog.demo.report import arm_result, difference_table, differences, learning_checks, metric
from photodialog.evaluation.metrics import SeedResult, build_result

BASELINE = {"bleu2": 2.0, "rouge_l": 4.0}
CHANCE = {"probe_acc_generator_object": 12.5, "probe_acc_generator_colour": 100 / 6}


def eval_result(arm: str, **scores) -> dict:
    """An eval result of one model with one sampling seed, as `photodialog eval --seeds 0` writes it."""
    record = SeedResult(0, metrics={"bleu1": 10.0, "is": 1.0, "fid": 50.0, "share_precision": 50.0, "share_recall": 50.0,
                                    "share_f1": 50.0, **scores}, chance=dict(CHANCE))
    return build_result(model={"name": arm}, data={"dataset": "synthetic", "split": "test"}, seed_results=[record])


def experiment(bleu2_gap: float) -> dict:
    spread = {0: 0.0, 1: 2.0, 2: -1.5}  # training seeds differ a lot; the gap is the same on each
    wobble = {0: 0.2, 1: -0.1, 2: -0.1}
    results = {}
    for arm, gap in (("no-bridge", 0.0), ("paper", bleu2_gap)):
        results[arm] = {seed: eval_result(arm, bleu2=5.0 + s + gap + (wobble[seed] if gap else 0.0), rouge_l=12.0 + s + (wobble[seed] if arm == "paper" else 0),
                                          probe_acc_generator_object=40.0, probe_acc_generator_colour=90.0)
                        for seed, s in spread.items()}
    return results


def test_an_arms_table_entry_is_the_mean_and_std_over_training_seeds():
    combined = arm_result("no-bridge", experiment(1.0)["no-bridge"])
    entry = combined["aggregate"]["bleu2"]
    assert combined["seeds"] == [0, 1, 2] and entry["n"] == 3
    assert entry["mean"] == pytest.approx(5.0 + 0.5 / 3) and entry["std"] > 1.0


def test_exploratory_differences_are_arm_minus_reference_with_an_interval_and_no_verdict():
    diffs = differences(experiment(1.0))["paper"]
    by = {d.metric: d for d in diffs}
    assert by["bleu2"].mean == pytest.approx(1.0) and by["bleu2"].low > 0
    assert by["rouge_l"].low < 0 < by["rouge_l"].high
    table = difference_table({"paper": diffs})
    assert "paper - no-bridge [95% interval]" in table
    bleu2_row = next(line for line in table.splitlines() if line.startswith("| BLEU-2"))
    assert "+1.00 [" in bleu2_row and not any(f"| {word}" in table for word in (BETTER, SAME, "worse"))


def test_the_primary_verdict_is_holm_corrected_and_reads_only_the_primary_metric():
    from photodialog.demo.plan import make_plan
    from photodialog.demo.report import primary_sentences, primary_verdicts

    plan = make_plan(3, ["no-bridge", "paper", "aligned"], quick=False)
    spread = {0: 0.0, 1: 4.0, 2: -3.0}
    gains = {"no-bridge": (0.0, 0.0, 0.0), "paper": (0.5, -0.4, 0.1), "aligned": (20.0, 20.5, 19.6)}
    results = {arm: {seed: eval_result(arm, photo_match_colour=50.0 + s + gains[arm][seed], bleu2=5.0 + 9 * (arm == "paper"), rouge_l=1.0)
                     for seed, s in spread.items()} for arm in gains}
    tests = {t.arm: t for t in primary_verdicts(results, plan)}
    assert tests["aligned"].verdict == BETTER and tests["aligned"].mean == pytest.approx(20.033, abs=1e-3)
    assert tests["paper"].verdict == SAME  # its large BLEU-2 gain is exploratory: no verdict comes from it
    sentences = primary_sentences(list(tests.values()), plan, results)
    assert any(s.startswith("aligned vs no-bridge on the primary endpoint") and "**better**" in s for s in sentences)


@pytest.mark.parametrize("colour, obj, bleu2, rouge, expected", [
    (61.0, 40.0, 2.5, 5.0, [True, True, True]),
    (59.0, 37.0, 2.5, 3.0, [False, False, False]),
])
def test_learning_checks_use_the_thresholds_and_the_stored_chance(colour, obj, bleu2, rouge, expected):
    by_seed = {s: eval_result("paper", probe_acc_generator_colour=colour, probe_acc_generator_object=obj, bleu2=bleu2,
                              rouge_l=rouge) for s in (0, 1)}
    checks = learning_checks({"paper": by_seed}, BASELINE)
    assert checks[0][0].startswith("paper: it shares a photo") and not checks[0][1]  # share F1 50% < 85%
    assert [ok for _, ok, _ in checks[1:]] == expected
    assert "37.5%" in checks[2][0]  # 3 x chance of 8 objects


def test_learning_checks_see_a_bot_that_shares_the_wrong_photo():
    """Every other check can pass while the own caption names the wrong object: the check that matters fails."""
    competent = dict(caption_acc_object=97.0, caption_acc_colour=99.0, caption_acc_scene=98.0, share_f1=95.0, reply_acc_object=92.0)
    wrong = {**competent, "caption_acc_object": 14.0}
    results = {arm: {s: eval_result(arm, probe_acc_generator_colour=90.0, probe_acc_generator_object=60.0, bleu2=2.5, rouge_l=5.0, **scores)
                     for s in (0, 1)} for arm, scores in (("paper", competent), ("no-bridge", wrong))}
    checks = {claim: ok for claim, ok, _ in learning_checks(results, BASELINE)}
    assert all(ok for claim, ok in checks.items() if claim.startswith("paper"))
    failed = [claim for claim, ok in checks.items() if not ok]
    assert failed == ["no-bridge: its own caption at every gold photo turn names the gold photo's object (>= 90%)"]


def test_unavailable_metrics_are_none():
    result = eval_result("paper", bleu2=1.0, rouge_l=2.0)
    assert metric(result, "bleu2") == 1.0 and metric(result, "probe_fid") is None

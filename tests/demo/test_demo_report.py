"""The demo's plan and its report's judgements, on hand-made eval results."""

from __future__ import annotations

import pytest

from photodialog.demo.plan import make_plan
from photodialog.demo.report import learning_checks, verdict


def result(**means) -> dict:
    return {"aggregate": {key: {"available": True, "mean": value} for key, value in means.items()}}


BASELINE = {"bleu2": 2.0, "rouge_l": 4.0}
# As the evaluation stores them: the probe's chance levels, 8 objects and 6 colours.
CHANCE = {"probe_acc_generator_object": 12.5, "probe_acc_generator_colour": 100 / 6}


def test_verdict_counts_directions_and_says_so_plainly():
    e2e = result(bleu1=12, bleu2=3, rouge_l=11, fid=70, share_f1=50)
    pipe = result(bleu1=10, bleu2=2, rouge_l=12, fid=80, share_f1=40)
    text = verdict({"end-to-end": e2e, "pipeline": pipe})
    assert text.startswith("The end-to-end model beats the pipeline on 4 of 5 metrics")  # FID: lower wins
    lost = verdict({"end-to-end": pipe, "pipeline": e2e})
    assert "does NOT beat the pipeline" in lost and "better on 1 and worse on 4" in lost


def test_unavailable_metrics_are_left_out_of_the_verdict():
    e2e = result(bleu2=3)
    e2e["aggregate"]["fid"] = {"available": False, "reason": "no weights"}
    assert "of 1 metrics" in verdict({"end-to-end": e2e, "pipeline": result(bleu2=2, fid=5)})


@pytest.mark.parametrize("colour, obj, bleu2, rouge, expected", [
    (61.0, 40.0, 2.5, 5.0, [True, True, True]),
    (59.0, 37.0, 2.5, 3.0, [False, False, False]),
])
def test_learning_checks_use_the_issue_thresholds(colour, obj, bleu2, rouge, expected):
    model = result(probe_acc_generator_colour=colour, probe_acc_generator_object=obj, bleu2=bleu2, rouge_l=rouge)
    model["chance"] = CHANCE
    checks = learning_checks({"end-to-end": model}, BASELINE)
    assert [ok for _, ok, _ in checks] == expected
    assert "37.5%" in checks[1][0]  # 3 x chance of 8 objects


def test_plans_fit_their_budgets():
    quick, full = make_plan(2, 1, quick=True), make_plan(20, 3, quick=False)
    assert quick.train_minutes < 1 and quick.eval_samples > 0 and quick.seeds == [0]
    assert 10 <= full.train_minutes <= 15 and full.seeds == [0, 1, 2]
    assert full.pipeline_part_minutes * 2 == pytest.approx(full.train_minutes)


def test_time_spent_adds_up_over_invocations(tmp_path):
    from photodialog.demo.report import _total_time
    from photodialog.demo.run import add_time_spent

    assert add_time_spent(tmp_path, 18.5) == {"minutes": 18.5, "invocations": 1}
    spent = add_time_spent(tmp_path, 0.5)  # a rerun that only rewrites the report
    assert spent == {"minutes": 19.0, "invocations": 2}
    assert _total_time(**spent).startswith("19.0 min over 2 runs")
    assert _total_time(18.5, 1) == "18.5 min"

"""Share-moment precision / recall / F1 over (predicted, gold) responses."""

import pytest

from photodialog.evaluation.share_moment import share_moment_scores, shares_photo


def test_a_turn_shares_a_photo_only_with_a_non_empty_caption():
    assert shares_photo("look [IMG] a red cup [/IMG]")
    assert shares_photo("[IMG] [/IMG] and [IMG] a dog [/IMG]")
    assert not shares_photo("[IMG]   [/IMG]")
    assert not shares_photo("no photo here, only the word IMG")


def test_hand_computed_counts_and_rates():
    predicted = [
        "[IMG] a cat [/IMG]",  # gold shares -> TP
        "[IMG] a dog [/IMG]",  # gold does not -> FP
        "just text",  # gold shares -> FN
        "more text",  # gold does not -> TN
        "[IMG] a cup [/IMG] see?",  # gold shares -> TP
        "[IMG] [/IMG]",  # empty caption is no share; gold shares -> FN
    ]
    gold = ["[IMG] cat [/IMG]", "hi", "[IMG] x [/IMG]", "ok", "[IMG] cup [/IMG]", "[IMG] y [/IMG]"]
    scores = share_moment_scores(predicted, gold)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives, scores.true_negatives) == (
        2,
        1,
        2,
        1,
    )
    assert scores.empty_caption_turns == 1
    # P = 2 / 3, R = 2 / 4, F1 = 2PR / (P + R) = (2 * 2/3 * 1/2) / (7/6) = 4/7.
    assert scores.precision == pytest.approx(100 * 2 / 3)
    assert scores.recall == pytest.approx(50.0)
    assert scores.f1 == pytest.approx(100 * 4 / 7)
    assert scores.turns == 6
    metric_set = scores.as_metric_set()
    assert metric_set.values["share_f1"] == pytest.approx(scores.f1)
    assert metric_set.counts["share_gold"] == 4 and metric_set.counts["share_predicted"] == 3


def test_zero_denominators_give_zero_and_counts_show_why():
    never = share_moment_scores(["a", "b"], ["[IMG] x [/IMG]", "c"])
    assert never.precision == 0.0 and never.recall == 0.0 and never.f1 == 0.0
    assert never.predicted_shares == 0 and never.gold_shares == 1
    nothing_to_share = share_moment_scores(["a"], ["b"])
    assert nothing_to_share.recall == 0.0 and nothing_to_share.precision == 0.0
    assert (nothing_to_share.true_negatives, nothing_to_share.gold_shares) == (1, 0)


def test_perfect_agreement_and_length_mismatch():
    texts = ["[IMG] a [/IMG]", "b", "[IMG] c [/IMG] d"]
    perfect = share_moment_scores(texts, texts)
    assert perfect.precision == perfect.recall == perfect.f1 == 100.0
    with pytest.raises(ValueError):
        share_moment_scores(["a"], [])

"""The demo's differences with 95% intervals over training seeds, and the verdicts they allow."""

from __future__ import annotations

import pytest

from photodialog.demo.intervals import BETTER, SAME, UNMEASURED, WORSE, paired_difference, summary, t_quantile

REFERENCE = {0: 40.0, 1: 47.0, 2: 43.0, 3: 50.0, 4: 45.0}  # a wide seed-to-seed spread


def shifted(by: float, noise=(0.4, -0.3, 0.2, -0.5, 0.1)) -> dict[int, float]:
    return {seed: value + by + n for (seed, value), n in zip(REFERENCE.items(), noise)}


def test_a_planted_difference_is_found_although_it_is_smaller_than_the_spread_between_seeds():
    # The other arm is 3 points worse on every seed; the seeds themselves spread over 10 points.
    d = paired_difference("bleu2", REFERENCE, shifted(-3.0), higher_is_better=True)
    assert d.verdict == BETTER and d.low > 0 and d.mean == pytest.approx(3.02)
    # For a lower-is-better metric the same numbers mean the reference is worse.
    assert paired_difference("fid", REFERENCE, shifted(-3.0), higher_is_better=False).verdict == WORSE


def test_no_planted_difference_is_not_found():
    d = paired_difference("bleu2", REFERENCE, shifted(0.0), higher_is_better=True)
    assert d.verdict == SAME and d.low < 0 < d.high


def test_unpaired_noise_as_large_as_a_difference_hides_it():
    # The same 3-point mean difference, but seed by seed it swings from -2 to +8: not detectable with 5 seeds.
    d = paired_difference("bleu2", REFERENCE, shifted(-3.0, noise=(5.0, -5.0, 2.0, -4.0, 2.0)), higher_is_better=True)
    assert d.verdict == SAME


def test_the_interval_is_students_t_over_the_paired_differences():
    d = paired_difference("x", {0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0}, higher_is_better=True)
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303
    assert (d.low, d.high) == pytest.approx((2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5))
    assert t_quantile(1) == pytest.approx(12.706) and t_quantile(1000) == 1.96
    with pytest.raises(ValueError):
        t_quantile(0)


def test_one_seed_gives_no_verdict_and_the_summary_says_why():
    d = paired_difference("bleu2", {0: 5.0}, {0: 1.0}, higher_is_better=True)
    assert d.verdict == UNMEASURED and d.low is None
    assert "no interval and no verdict" in summary("end-to-end", "pipeline", [d])


def test_the_summary_follows_from_the_verdicts_not_from_raw_wins():
    found = paired_difference("bleu2", REFERENCE, shifted(-3.0), higher_is_better=True)
    # Four metrics where the reference is ahead by a little on average, none of them detectably.
    noise = [paired_difference(f"m{i}", REFERENCE, shifted(-0.1, noise=(3, -3, 2, -2, 0)), higher_is_better=True)
             for i in range(4)]
    assert all(n.mean > 0 and n.verdict == SAME for n in noise)
    text = summary("end-to-end", "no-bridge", [found, *noise])
    assert "better on BLEU-2" in text and "no detectable difference on 4 other metric(s)" in text and "worse" not in text
    assert "no detectable difference on any of 4 metrics" in summary("end-to-end", "no-bridge", noise)


def test_arms_without_a_common_seed_cannot_be_compared():
    with pytest.raises(ValueError, match="share no training seed"):
        paired_difference("bleu2", {0: 1.0}, {1: 1.0}, higher_is_better=True)


def test_values_equal_on_every_seed_are_called_identical_and_counted_as_no_difference():
    from photodialog.demo.intervals import IDENTICAL

    same = paired_difference("probe_acc_generator_all", REFERENCE, dict(REFERENCE), higher_is_better=True)
    assert same.verdict == IDENTICAL and (same.low, same.high) == (0.0, 0.0)
    one_seed = paired_difference("bleu2", {0: 1.0}, {0: 1.0}, higher_is_better=True)
    assert one_seed.verdict == UNMEASURED  # one seed says nothing, even when the values are equal
    assert "no interval and no verdict" in summary("end-to-end", "no-bridge", [same, one_seed])
    text = summary("end-to-end", "no-bridge", [same, paired_difference("bleu2", REFERENCE, shifted(0.0), True)])
    assert "no detectable difference on any of 2 metrics" in text and "1 of them identical on every seed" in text

"""The demo's statistics: the primary endpoint's Holm-corrected tests, its power, and 95% intervals over training seeds."""

from __future__ import annotations

import pytest

from photodialog.demo.intervals import (
    BETTER, IDENTICAL, SAME, UNMEASURED, WORSE, detectable_difference, paired_difference, primary_tests, t_quantile,
    t_quantile_at, t_two_sided_p,
)

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


def test_one_seed_gives_no_interval():
    d = paired_difference("bleu2", {0: 5.0}, {0: 1.0}, higher_is_better=True)
    assert d.verdict == UNMEASURED and d.low is None


def test_arms_without_a_common_seed_cannot_be_compared():
    with pytest.raises(ValueError, match="share no training seed"):
        paired_difference("bleu2", {0: 1.0}, {1: 1.0}, higher_is_better=True)


def test_values_equal_on_every_seed_are_called_identical():
    same = paired_difference("probe_acc_generator_all", REFERENCE, dict(REFERENCE), higher_is_better=True)
    assert same.verdict == IDENTICAL and (same.low, same.high) == (0.0, 0.0)
    one_seed = paired_difference("bleu2", {0: 1.0}, {0: 1.0}, higher_is_better=True)
    assert one_seed.verdict == UNMEASURED  # one seed says nothing, even when the values are equal


@pytest.mark.parametrize("df, t, p", [(1, 12.706, 0.05), (2, 4.303, 0.05), (3, 3.182, 0.05), (3, 5.841, 0.01),
                                      (4, 2.776, 0.05), (10, 2.228, 0.05), (30, 2.042, 0.05), (5, 0.0, 1.0)])
def test_the_t_distribution_matches_the_published_table(df, t, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)
    assert t_two_sided_p(-t, df) == t_two_sided_p(t, df)
    if p < 1:
        assert t_quantile_at(1 - p / 2, df) == pytest.approx(t, abs=2e-3)
    assert t_quantile_at(0.8, 3) == pytest.approx(0.978, abs=1e-3)  # the power quantile the report uses


def test_holm_judges_the_smallest_p_at_alpha_over_m_and_stops_at_the_first_that_fails():
    reference = {0: 10.0, 1: 12.0, 2: 11.0, 3: 13.0}
    arms = {
        "big": {s: v + 10 + n for (s, v), n in zip(reference.items(), (0.1, -0.1, 0.2, -0.2))},  # a large clear gain
        "worse": {s: v - 3 + n for (s, v), n in zip(reference.items(), (0.3, -0.3, 0.2, -0.2))},  # a clear loss
        "noise": {s: v + n for (s, v), n in zip(reference.items(), (2.0, -2.0, 1.0, -1.5))},
    }
    tests = {t.arm: t for t in primary_tests(reference, arms)}
    assert tests["big"].verdict == BETTER and tests["big"].level == pytest.approx(0.05 / 3)
    assert tests["worse"].verdict == WORSE and tests["worse"].level == pytest.approx(0.05 / 2)
    assert tests["noise"].verdict == SAME and tests["noise"].level == pytest.approx(0.05)
    # A p that would pass on its own (0.03 < 0.05) is not a verdict when Holm's first step fails.
    weak = {"a": {s: v + d for (s, v), d in zip(reference.items(), (1.0, 3.0, 2.0, 4.0))},
            "b": {s: v + d for (s, v), d in zip(reference.items(), (1.0, 3.0, 2.0, 4.0))}}
    assert all(0.01 < t.p < 0.05 and t.verdict == SAME for t in primary_tests(reference, weak))
    assert primary_tests(reference, {"one": {0: 99.0}})[0].verdict == UNMEASURED
    assert primary_tests(reference, {"same": dict(reference)})[0].verdict == IDENTICAL


def test_the_detectable_difference_shrinks_with_seeds_and_grows_with_the_spread_and_the_contrasts():
    four = detectable_difference(5.0, 4, 3)
    # (t(1 - 0.05/6, 3) + t(0.8, 3)) * 5 / 2: Holm's strictest level for three contrasts
    assert four == pytest.approx((t_quantile_at(1 - 0.05 / 6, 3) + 0.978) * 5.0 / 2, rel=1e-3)
    assert detectable_difference(5.0, 8, 3) < four < detectable_difference(10.0, 4, 3)
    assert detectable_difference(5.0, 4, 1) < four
    assert detectable_difference(5.0, 1, 3) == float("inf")

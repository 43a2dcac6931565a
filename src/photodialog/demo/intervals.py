"""Differences between two arms over training seeds: the primary endpoint's test, and 95% intervals.

Why seed-level: the question is whether *training* one way beats training another, and most of
the spread between runs comes from training (initialisation of new weights, data order, noise),
not from which test dialogues were drawn. A bootstrap over test dialogues of one run per arm
measures only the second. So each training seed ``s`` is one paired observation: both arms start
from the same pretrained weights and see the same data in the same order, and
``d_s = metric(reference arm, s) - metric(other arm, s)``. The interval is Student's t on the
``d_s``: ``mean(d) +- t(0.975, n - 1) * sd(d) / sqrt(n)``. With few seeds it is wide, which is
the honest answer: a difference smaller than the run-to-run spread is not detectable.

The demo judges one pre-registered primary endpoint (``primary_tests``: a paired t-test per arm
against the reference, Holm's correction over the arms, so the chance of any false verdict stays at
5%); every other metric gets its interval (``paired_difference``) and is reported as exploratory.
``detectable_difference`` says what a run of n seeds can find at 80% power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


# Two-sided 95% quantiles of Student's t, t(0.975, df), df = 1..30; the normal 1.96 above.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)

BETTER, WORSE, SAME, UNMEASURED = "better", "worse", "no detectable difference", "not measurable (one seed)"
IDENTICAL = "identical on every seed"  # e.g. what both arms compute the same way, bit for bit


def t_quantile(df: int) -> float:
    """t(0.975, df): the multiplier of a two-sided 95% interval with ``df`` degrees of freedom (>= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass
class Difference:
    """``reference - other`` for one metric over paired seeds, with its 95% interval and verdict."""

    metric: str
    seeds: int
    mean: float
    low: float | None
    high: float | None
    verdict: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def paired_difference(metric: str, reference: dict[int, float], other: dict[int, float], higher_is_better: bool) -> Difference:
    """The difference of two arms' per-seed values (``{seed: value}``) on the seeds both have.

    Raises ``ValueError`` when they share no seed.
    """
    seeds = sorted(set(reference) & set(other))
    if not seeds:
        raise ValueError(f"{metric}: the two arms share no training seed")
    diffs = [reference[s] - other[s] for s in seeds]
    mean = sum(diffs) / len(diffs)
    if len(diffs) < 2:  # one seed: nothing to say, even when the two values are equal
        return Difference(metric, 1, mean, None, None, UNMEASURED)
    if all(d == 0 for d in diffs):
        return Difference(metric, len(diffs), 0.0, 0.0, 0.0, IDENTICAL)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    half = t_quantile(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    low, high = mean - half, mean + half
    return Difference(metric, len(diffs), mean, low, high, _verdict(low, high, higher_is_better))


def _verdict(low: float, high: float, higher_is_better: bool) -> str:
    if low > 0:
        return BETTER if higher_is_better else WORSE
    if high < 0:
        return WORSE if higher_is_better else BETTER
    return SAME


# ------------------------------------------------------------ the pre-registered primary endpoint

def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` (>= 1, whole) degrees of freedom: the exact finite
    series for integer ``df`` (Abramowitz & Stegun 26.7.3-4), so no statistics library is needed."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # odd
        series, term = 0.0, math.cos(theta)
        for k in range(1, (df - 1) // 2 + 1):
            series += term
            term *= c2 * (2 * k) / (2 * k + 1)
        inside = (2 / math.pi) * (theta + math.sin(theta) * series) if df > 1 else 2 * theta / math.pi
    else:
        series, term = 0.0, 1.0
        for k in range(1, df // 2 + 1):
            series += term
            term *= c2 * (2 * k - 1) / (2 * k)
        inside = math.sin(theta) * series
    return min(1.0, max(0.0, 1.0 - inside))


def t_quantile_at(p: float, df: int) -> float:
    """The t with P(T <= t) = ``p`` (0.5 <= p < 1) for ``df`` degrees of freedom, by bisection on
    ``t_two_sided_p``."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    low, high = 0.0, 1e4
    for _ in range(200):
        mid = (low + high) / 2
        if 1 - t_two_sided_p(mid, df) / 2 < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


@dataclass
class PrimaryTest:
    """One contrast (``arm - reference``) on the primary endpoint: a paired t-test over training
    seeds, judged by Holm's step-down procedure over every contrast of the family."""

    arm: str
    seeds: int
    mean: float
    sd: float
    p: float
    level: float = 0.0
    """The p-value this contrast had to beat at its Holm step (family level / remaining tests)."""
    verdict: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def primary_tests(reference: dict[int, float], arms: dict[str, dict[int, float]], higher_is_better: bool = True,
                  family_level: float = 0.05) -> list[PrimaryTest]:
    """Every arm minus ``reference`` on the paired seeds (``{seed: value}``), with Holm's correction:
    the p-values are taken in ascending order and the k-th (k = 0, 1, ...) must be below
    ``family_level / (m - k)``; the first that is not, and every larger one, are "no detectable
    difference". The chance of any false "better"/"worse" in the family is at most ``family_level``.
    A contrast with fewer than 2 paired seeds is "not measurable"."""
    tests = []
    for arm, values in arms.items():
        seeds = sorted(set(reference) & set(values))
        diffs = [values[s] - reference[s] for s in seeds]
        if len(diffs) < 2:
            tests.append(PrimaryTest(arm, len(diffs), sum(diffs) / max(1, len(diffs)), 0.0, 1.0, 0.0, UNMEASURED))
            continue
        mean = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        if sd == 0:
            p = 1.0 if mean == 0 else 0.0
        else:
            p = t_two_sided_p(mean / (sd / math.sqrt(len(diffs))), len(diffs) - 1)
        tests.append(PrimaryTest(arm, len(diffs), mean, sd, p))
    measurable = sorted((t for t in tests if t.verdict != UNMEASURED), key=lambda t: (t.p, t.arm))
    rejecting = True
    for k, test in enumerate(measurable):
        test.level = family_level / (len(measurable) - k)
        rejecting = rejecting and test.p < test.level
        if rejecting and test.mean != 0:
            test.verdict = BETTER if (test.mean > 0) == higher_is_better else WORSE
        else:
            test.verdict = IDENTICAL if test.sd == 0 and test.mean == 0 else SAME
    return tests


def detectable_difference(sd: float, seeds: int, contrasts: int, family_level: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that a paired t-test over ``seeds`` seeds finds with
    probability ``power`` at the strictest Holm level (``family_level / contrasts``, two-sided),
    when the per-seed differences spread with standard deviation ``sd``:
    ``(t(1 - level/2, n-1) + t(power, n-1)) * sd / sqrt(n)`` (the usual approximation)."""
    if seeds < 2:
        return math.inf
    level = family_level / max(1, contrasts)
    df = seeds - 1
    return (t_quantile_at(1 - level / 2, df) + t_quantile_at(power, df)) * sd / math.sqrt(seeds)

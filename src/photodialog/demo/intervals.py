"""Differences between two arms with a 95% interval over training seeds, and the verdict they allow.

Why seed-level: the question is whether *training* one way beats training another, and most of
the spread between runs comes from training (initialisation of new weights, data order, noise),
not from which test dialogues were drawn. A bootstrap over test dialogues of one run per arm
measures only the second. So each training seed ``s`` is one paired observation: both arms start
from the same pretrained weights and see the same data in the same order, and
``d_s = metric(reference arm, s) - metric(other arm, s)``. The interval is Student's t on the
``d_s``: ``mean(d) +- t(0.975, n - 1) * sd(d) / sqrt(n)``. With few seeds it is wide, which is
the honest answer: a difference smaller than the run-to-run spread is not detectable.

Verdict per metric: *better* when the interval lies wholly on the good side of 0, *worse* when on
the bad side, *no detectable difference* otherwise (and *not measurable* with one seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from photodialog.evaluation.results import metric_info

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


def summary(reference: str, other: str, differences: list[Difference]) -> str:
    """One sentence that follows from the verdicts (never from a count of raw wins)."""
    if not differences:
        return f"No metric could compare {reference} with {other}."
    if any(d.verdict == UNMEASURED for d in differences):
        return (f"{reference} vs {other}: one training seed per arm, so no interval and no verdict "
                "(run with --seeds 3 or more).")
    by = {v: [_label(d.metric) for d in differences if d.verdict == v] for v in (BETTER, WORSE, SAME, IDENTICAL)}
    seeds = differences[0].seeds
    same = by[SAME] + by[IDENTICAL]
    identical = f" ({len(by[IDENTICAL])} of them identical on every seed: {', '.join(by[IDENTICAL])})" if by[IDENTICAL] else ""
    if not by[BETTER] and not by[WORSE]:
        return (f"{reference} vs {other}: no detectable difference on any of {len(differences)} metrics "
                f"(95% intervals over {seeds} training seeds all contain 0){identical}.")
    parts = []
    if by[BETTER]:
        parts.append(f"better on {', '.join(by[BETTER])}")
    if by[WORSE]:
        parts.append(f"worse on {', '.join(by[WORSE])}")
    parts.append(f"no detectable difference on {len(same)} other metric(s){identical}")
    return f"{reference} vs {other} (95% intervals over {seeds} training seeds): " + "; ".join(parts) + "."


def _label(key: str) -> str:
    """The metric's name as the tables print it (the key itself when the evaluation does not know it)."""
    try:
        return metric_info(key).label
    except (KeyError, ValueError):
        return key

"""Mean and spread of every metric over seeds (the paper reports the average of 3 seeds).

Definitions, for a metric measured on seeds s_1..s_n where it was available:

- ``mean``: the arithmetic mean of the per-seed values.
- ``std``: the sample standard deviation of the per-seed values (ddof = 1), i.e. how much
  the metric moves from seed to seed; 0.0 when n = 1.
- for IS only, ``split_std``: the mean over seeds of torch-fidelity's own IS standard
  deviation across its splits (population std over ``isc_splits`` splits of one seed's
  images). This is the "± std" of the paper's Table 2, and the one tables show next to IS;
  ``std`` of IS is the spread of the IS mean over seeds, as for every other metric.

A metric unavailable on every seed aggregates to ``{"available": false, "reason", "fix"}``;
one available on some seeds only is aggregated over those, with ``unavailable_seeds`` giving
the reason for the others.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from photodialog.evaluation.metrics import IS_SPLIT_STD, SeedResult, metric_order, unavailable_record


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    if not values:
        raise ValueError("mean_and_std needs at least one value")
    mean = math.fsum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def _as_seed_result(obj: SeedResult | Mapping[str, Any]) -> SeedResult:
    return obj if isinstance(obj, SeedResult) else SeedResult.from_dict(obj)


def _unavailable_everywhere(key: str, seed_results: Sequence[SeedResult]) -> dict[str, Any]:
    entries = [sr.unavailable[key] for sr in seed_results if key in sr.unavailable]
    reasons = list(dict.fromkeys(e["reason"] for e in entries)) or ["not measured"]
    fixes = [e["fix"] for e in entries if e.get("fix")]
    return unavailable_record("; ".join(reasons), fixes[0] if fixes else None)


def aggregate_metric(key: str, seed_results: Sequence[SeedResult | Mapping[str, Any]]) -> dict[str, Any]:
    """The aggregate entry of one metric over seeds (see the module docstring)."""
    seed_results = [_as_seed_result(sr) for sr in seed_results]
    measured = [sr for sr in seed_results if key in sr.metrics]
    if not measured:
        return _unavailable_everywhere(key, seed_results)
    values = [sr.metrics[key] for sr in measured]
    mean, std = mean_and_std(values)
    entry: dict[str, Any] = {
        "available": True,
        "mean": mean,
        "std": std,
        "n": len(values),
        "values": values,
        "seeds": [sr.seed for sr in measured],
    }
    if key == "is":
        split_stds = [sr.metrics.get(IS_SPLIT_STD, 0.0) for sr in measured]
        entry["split_std"] = math.fsum(split_stds) / len(split_stds)
    missing = [sr for sr in seed_results if key not in sr.metrics]
    if missing:
        entry["unavailable_seeds"] = {
            str(sr.seed): sr.unavailable.get(key, {}).get("reason", "not measured") for sr in missing
        }
    return entry


def aggregate_seeds(seed_results: Sequence[SeedResult | Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Aggregate entries of every metric seen on any seed, in table order."""
    seed_results = [_as_seed_result(sr) for sr in seed_results]
    keys = [key for sr in seed_results for key in [*sr.metrics, *sr.unavailable]]
    return {key: aggregate_metric(key, seed_results) for key in metric_order(keys)}

"""Several eval results side by side, with each one's difference to the first.

Rows are metrics, columns the models; after every model but the first comes its signed
difference to the first (of the mean over seeds), with an arrow for the sign of the change
and "better" / "worse" from the metric's direction: higher is better except FID and
probe-FID. A metric whose direction is unknown gets the arrow only; a difference that
rounds to zero is "=". A metric missing from either side shows "n/a".
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from photodialog.evaluation.metrics import metric_info, metric_order
from photodialog.evaluation.tables import DIGITS, Footnotes, Table, format_metric, model_names

Result = Mapping[str, Any]


def _mean(result: Result, key: str) -> float | None:
    entry = result.get("aggregate", {}).get(key)
    return entry["mean"] if entry and entry.get("available") else None


def format_difference(key: str, difference: float, digits: int = DIGITS) -> str:
    """"+1.43 ↑ better", "-3.86 ↓ better" (for FID), "+0.00 =" when it rounds to zero."""
    if round(difference, digits) == 0:
        return f"{0:+.{digits}f} ="
    arrow = "↑" if difference > 0 else "↓"
    text = f"{difference:+.{digits}f} {arrow}"
    higher_is_better = metric_info(key).higher_is_better
    if higher_is_better is None:
        return text
    return f"{text} {'better' if (difference > 0) == higher_is_better else 'worse'}"


def difference_cell(base: Result, other: Result, key: str) -> str:
    base_mean, other_mean = _mean(base, key), _mean(other, key)
    if base_mean is None or other_mean is None:
        return "n/a"
    return format_difference(key, other_mean - base_mean)


def _metric_label(key: str) -> str:
    info = metric_info(key)
    if info.higher_is_better is None:
        return info.label
    return f"{info.label} {'↑' if info.higher_is_better else '↓'}"


def comparison_table(
    results: Sequence[Result], names: Sequence[str] | None = None, *, metrics: Sequence[str] | None = None
) -> Table:
    """The comparison as a ``Table`` (see the module docstring)."""
    if not results:
        raise ValueError("compare_results needs at least one result")
    names = model_names(results, names)
    if metrics is None:
        metrics = metric_order(key for result in results for key in result.get("aggregate", {}))
    headers = ["Metric", names[0]]
    for name in names[1:]:
        headers += [name, f"{name} - {names[0]}"]
    footnotes = Footnotes()
    rows = []
    for key in metrics:
        row = [_metric_label(key), format_metric(results[0], key, footnotes)]
        for other in results[1:]:
            row += [format_metric(other, key, footnotes), difference_cell(results[0], other, key)]
        rows.append(row)
    notes = [f"Differences are to {names[0]} (means over seeds); ↑/↓ after a metric: the better direction."]
    notes += _data_mismatch_notes(results, names)
    return Table("Comparison", headers, rows, footnotes.texts, notes)


def _data_mismatch_notes(results: Sequence[Result], names: Sequence[str]) -> list[str]:
    """A warning when the results were not measured on the same dataset and split."""
    def where(result: Result) -> str:
        data = result.get("data", {})
        return f"{data.get('dataset', '?')}/{data.get('split', '?')}"

    places = [where(r) for r in results]
    if len(set(places)) == 1:
        return []
    listed = ", ".join(f"{name}: {place}" for name, place in zip(names, places))
    return [f"Warning: the results are on different data ({listed})."]


def compare_results(
    results: Sequence[Result],
    names: Sequence[str] | None = None,
    *,
    metrics: Sequence[str] | None = None,
    fmt: str = "markdown",
) -> str:
    """Side-by-side table of several results with signed, direction-aware differences to the first.

    ``names`` default to each result's ``model.name``; ``metrics`` to every metric any result
    has, in table order; ``fmt`` is "markdown" or "text".
    """
    return comparison_table(results, names, metrics=metrics).render(fmt)

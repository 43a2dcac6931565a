"""Eval results as tables: the paper's Table 2 layout, share moment, probe scores, per-seed detail,
and several results side by side (``compare``).

Each builder returns a ``Table`` that renders as Markdown (``to_markdown``) or as aligned
plain text for terminals (``to_text``). A metric that could not be computed shows as
``n/a [k]`` with footnote k giving the reason and the fix; equal reasons share a footnote.

Values are the mean over seeds. IS shows as "mean ± std" where std is torch-fidelity's
std over its splits, averaged over seeds (``split_std``, the paper's "±"); the spread over
seeds of every metric is in ``seeds_table``, or in every cell with ``seed_spread=True``
("mean ± sample std over seeds" for the other metrics).

**Several results side by side** (``compare``): rows are metrics, columns the models; after every model but the first comes its signed
difference to the first (of the mean over seeds), with an arrow for the sign of the change
and "better" / "worse" from the metric's direction: higher is better except FID and
probe-FID. A metric whose direction is unknown gets the arrow only; a difference that
rounds to zero is "=". A metric missing from either side shows "n/a".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from photodialog.evaluation.metrics import CAPTION_METRICS, SHARE_MOMENT_METRICS, TABLE2_METRICS, metric_info, metric_order


Result = Mapping[str, Any]
DIGITS = 2


@dataclass
class Table:
    """A titled table of strings with footnotes and free notes under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    footnotes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _tail(self) -> list[str]:
        return [f"[{i}] {text}" for i, text in enumerate(self.footnotes, start=1)] + self.notes

    def to_markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        align = ["---"] + ["---:"] * (len(self.headers) - 1)
        lines = [f"**{self.title}**", "", line(self.headers), line(align)] + [line(r) for r in self.rows]
        tail = self._tail()
        return "\n".join(lines + ([""] + tail if tail else [])) + "\n"

    def to_text(self) -> str:
        widths = [max(len(row[i]) for row in [self.headers] + self.rows) for i in range(len(self.headers))]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
            return "  ".join([first] + rest).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines = [self.title, line(self.headers), rule] + [line(r) for r in self.rows]
        return "\n".join(lines + self._tail()) + "\n"

    def render(self, fmt: str = "markdown") -> str:
        if fmt not in ("markdown", "text"):
            raise ValueError(f"unknown table format {fmt!r}; use 'markdown' or 'text'")
        return self.to_markdown() if fmt == "markdown" else self.to_text()


class Footnotes:
    """Numbers the reasons of unavailable metrics: one footnote per distinct (reason, fix),
    naming every metric it applies to (IS and FID without weights share one)."""

    def __init__(self) -> None:
        self._labels: dict[tuple[str, str | None], list[str]] = {}

    def marker(self, entry: Mapping[str, Any], label: str) -> str:
        key = (str(entry.get("reason", "not measured")), entry.get("fix"))
        labels = self._labels.setdefault(key, [])
        if label not in labels:
            labels.append(label)
        return f"[{list(self._labels).index(key) + 1}]"

    @property
    def texts(self) -> list[str]:
        return [
            f"{', '.join(labels)}: {_sentence(reason)}" + (f" Fix: {_sentence(fix)}" if fix else "")
            for (reason, fix), labels in self._labels.items()
        ]


def _sentence(text: str) -> str:
    return text.rstrip().rstrip(".") + "."


def format_number(value: float, digits: int = DIGITS) -> str:
    return f"{value:.{digits}f}"


def format_metric(result: Result, key: str, footnotes: Footnotes, *, digits: int = DIGITS, seed_spread: bool = False) -> str:
    """One table cell: the mean over seeds, "mean ± split std" for IS, or "n/a [k]".

    ``seed_spread``: other metrics as "mean ± sample std over seeds" when there are several seeds.
    """
    entry = result.get("aggregate", {}).get(key)
    if entry is None:
        entry = {"available": False, "reason": "not measured"}
    if not entry.get("available"):
        return f"n/a {footnotes.marker(entry, metric_info(key).label)}"
    text = format_number(entry["mean"], digits)
    if key == "is":
        text += f" ± {format_number(entry['split_std'], digits)}"
    elif seed_spread and entry.get("n", 1) > 1:
        text += f" ± {format_number(entry['std'], digits)}"
    return text


def model_names(results: Sequence[Result], names: Sequence[str] | None) -> list[str]:
    """``names`` if given (one per result), else each result's ``model.name``."""
    if names is None:
        return [str(r.get("model", {}).get("name", f"model {i + 1}")) for i, r in enumerate(results)]
    if len(names) != len(results):
        raise ValueError(f"{len(names)} names for {len(results)} results")
    return list(names)


def metrics_table(
    title: str, results: Sequence[Result], names: Sequence[str] | None, keys: Sequence[str], notes: list[str],
    *, seed_spread: bool = False,
) -> Table:
    """Rows = models, columns = ``keys``; the shape of every table below."""
    footnotes = Footnotes()
    rows = [
        [name] + [format_metric(result, key, footnotes, seed_spread=seed_spread) for key in keys]
        for name, result in zip(model_names(results, names), results)
    ]
    headers = ["Model"] + [metric_info(key).label for key in keys]
    return Table(title, headers, rows, footnotes.texts, notes)


def _seed_note(results: Sequence[Result], seed_spread: bool = False) -> str:
    counts = sorted({len(r.get("seeds", [])) for r in results})
    per_model = " or ".join(str(c) for c in counts)
    if seed_spread:
        return (f"Mean ± sample std over {per_model} seed(s) per model (IS: ± its split std). Greedy replies are the "
                "same for every seed, so text and share-moment scores vary only across training runs, not seeds.")
    return f"Mean over {per_model} seed(s) per model."


def table2(results: Sequence[Result], names: Sequence[str] | None = None, *, seed_spread: bool = False) -> Table:
    """Table 2's layout: Model | BLEU-1 | BLEU-2 | Rouge-L | IS | FID."""
    notes = [
        "BLEU-n: corpus BLEU with the individual n-gram precision, x100; Rouge-L: mean LCS F1, x100.",
        "IS: mean ± std over torch-fidelity's splits (higher is better); FID: lower is better.",
        _seed_note(results, seed_spread),
    ]
    return metrics_table("Text and image response generation", results, names, TABLE2_METRICS, notes, seed_spread=seed_spread)


def share_moment_table(results: Sequence[Result], names: Sequence[str] | None = None, *, seed_spread: bool = False) -> Table:
    """Share-moment precision, recall and F1 (%)."""
    notes = ["Does the model share a photo in exactly the turns where the gold response does? (%)"]
    return metrics_table("Share moment", results, names, SHARE_MOMENT_METRICS, notes, seed_spread=seed_spread)


def caption_table(results: Sequence[Result], names: Sequence[str] | None = None, *, seed_spread: bool = False) -> Table | None:
    """Does the model share the photo the conversation is about (%): its own caption at every gold photo
    turn names the gold photo's object, colour, scene, all three, and its reply to an unannounced photo
    names the photo's object. None unless some result has them (a synthetic world's attributes)."""
    keys = [key for key in CAPTION_METRICS if any(r.get("aggregate", {}).get(key, {}).get("available") for r in results)]
    if not keys:
        return None
    notes = ["caption: its own caption at every gold photo turn names the gold photo's attribute (a turn where it "
             "shares nothing counts as wrong); sees: its reply to a photo nothing in the text announces names the "
             "photo's object."]
    return metrics_table("Own caption and what it sees (synthetic world, %)", results, names, keys, notes, seed_spread=seed_spread)


def _probe_keys(results: Sequence[Result]) -> list[str]:
    keys = [key for result in results for key in result.get("aggregate", {}) if key.startswith("probe_")]
    return metric_order(keys)


def probe_table(results: Sequence[Result], names: Sequence[str] | None = None, *, seed_spread: bool = False) -> Table | None:
    """Probe accuracies (%) and probe-FID, with a chance row; None if no result has probe scores."""
    keys = _probe_keys(results)
    if not keys:
        return None
    notes = [
        "Attributes of generated photos read by a probe classifier of the synthetic world (%).",
        "probe-FID: Frechet distance in the probe's feature space, not Inception (lower is better).",
    ]
    table = metrics_table("Generated photos, probe scores", results, names, keys, notes, seed_spread=seed_spread)
    chance = next((r["chance"] for r in results if r.get("chance")), {})
    if chance:
        table.rows.append(["chance"] + [format_number(chance[k]) if k in chance else "" for k in keys])
    return table


def _seed_cell(per_seed_entry: Mapping[str, Any] | None, key: str) -> str:
    metrics = (per_seed_entry or {}).get("metrics", {})
    return format_number(metrics[key]) if key in metrics else "n/a"


def seeds_table(result: Result, name: str | None = None) -> Table:
    """Every metric of one result per seed, with mean ± std over seeds (sample std)."""
    seeds = result.get("seeds", [])
    per_seed = {entry["seed"]: entry for entry in result.get("per_seed", [])}
    aggregate = result.get("aggregate", {})
    footnotes = Footnotes()
    rows = []
    for key in metric_order(aggregate):
        entry, label = aggregate[key], metric_info(key).label
        if entry.get("available"):
            summary = f"{format_number(entry['mean'])} ± {format_number(entry['std'])}"
        else:
            summary = f"n/a {footnotes.marker(entry, label)}"
        rows.append([label] + [_seed_cell(per_seed.get(s), key) for s in seeds] + [summary])
    title = f"Per seed: {name or result.get('model', {}).get('name', '')}".rstrip(": ")
    headers = ["Metric"] + [f"seed {s}" for s in seeds] + ["mean ± std"]
    return Table(title, headers, rows, footnotes.texts, notes=["std: sample standard deviation over seeds."])


def report(
    results: Sequence[Result], names: Sequence[str] | None = None, fmt: str = "markdown", *, with_seeds: bool = False,
    seed_spread: bool = False,
) -> str:
    """Table 2, share moment and (when present) own-caption and probe tables, in Markdown or plain text.

    ``with_seeds`` appends each result's per-seed table; ``seed_spread`` shows mean ± std over seeds in each cell.
    """
    tables = [table2(results, names, seed_spread=seed_spread), share_moment_table(results, names, seed_spread=seed_spread),
              caption_table(results, names, seed_spread=seed_spread), probe_table(results, names, seed_spread=seed_spread)]
    if with_seeds:
        tables += [seeds_table(r, n) for r, n in zip(results, model_names(results, names))]
    return "\n".join(table.render(fmt) for table in tables if table is not None)


# ---- Several eval results side by side, with each one's difference to the first ----

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


# Generation settings that change what is measured: results that differ in them are not comparable.
PROTOCOL_SETTINGS = ("decoding", "max_new_tokens", "diffusion_steps", "guidance_scale", "sampler", "image_size")


def _data_mismatch_notes(results: Sequence[Result], names: Sequence[str]) -> list[str]:
    """A warning when the results were not measured on the same dataset and split, the same number of
    target turns and the same generation settings."""
    def where(result: Result) -> str:
        data = result.get("data", {})
        return f"{data.get('dataset', '?')}/{data.get('split', '?')}"

    places = [where(r) for r in results]
    notes = []
    if len(set(places)) > 1:
        listed = ", ".join(f"{name}: {place}" for name, place in zip(names, places))
        notes.append(f"Warning: the results are on different data ({listed}).")
    # the same data asked differently (fewer turns, other generation settings) is another measurement too
    asked = {"target turns": [r.get("data", {}).get("targets") for r in results]}
    asked |= {key.replace("_", " "): [r.get("settings", {}).get(key) for r in results] for key in PROTOCOL_SETTINGS}
    for what, values in asked.items():
        if len({json.dumps(v) for v in values}) > 1:
            listed = ", ".join(f"{name}: {value}" for name, value in zip(names, values))
            notes.append(f"Warning: the results differ in {what} ({listed}).")
    return notes


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

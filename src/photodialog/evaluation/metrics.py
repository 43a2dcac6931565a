"""The metrics an evaluation reports: their keys, labels, directions and table order (the one
list of metric names), and the per-seed record the scorers fill (``MetricSet``, ``SeedResult``).

Scales: BLEU, ROUGE-L, share-moment P/R/F1 and probe accuracies are percentages (0-100, as in
the paper's Table 2); IS, FID and probe-FID are raw. A new metric is a scorer returning a
``MetricSet`` (``text_metrics``, ``share_moment``, ``image_metrics``, ``probe_scores``), its
``MetricInfo`` line in ``_KNOWN_METRICS`` below, and its call in ``seed_scoring.SeedScorer``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

TABLE2_METRICS = ("bleu1", "bleu2", "rouge_l", "is", "fid")
SHARE_MOMENT_METRICS = ("share_precision", "share_recall", "share_f1")
# What the text says about photos, on a synthetic world (attribute_metrics.caption_accuracy).
CAPTION_METRICS = ("caption_acc_object", "caption_acc_colour", "caption_acc_scene", "caption_acc_all", "reply_acc_object")
REQUIRED_METRICS = TABLE2_METRICS + SHARE_MOMENT_METRICS
# Per-seed only: folded into the aggregate of "is" as its "split_std".
IS_SPLIT_STD = "is_split_std"


@dataclass(frozen=True)
class MetricInfo:
    """How to show and compare one metric.

    ``higher_is_better`` is None when the direction is unknown (then no better/worse mark).
    """

    key: str
    label: str
    higher_is_better: bool | None
    description: str = ""


_KNOWN_METRICS = {
    info.key: info
    for info in (
        MetricInfo("rouge_l", "Rouge-L", True, "sentence LCS F1, mean over turns, x100"),
        MetricInfo("is", "IS", True, "Inception Score (torch-fidelity), mean over splits"),
        MetricInfo("fid", "FID", False, "Frechet Inception Distance (torch-fidelity)"),
        MetricInfo("share_precision", "share P", True, "share-moment precision, %"),
        MetricInfo("share_recall", "share R", True, "share-moment recall, %"),
        MetricInfo("share_f1", "share F1", True, "share-moment F1, %"),
        MetricInfo("probe_all_correct", "all correct", True, "probe: every attribute right, %"),
        MetricInfo("caption_acc_object", "caption object", True, "own caption at gold photo turns names the gold object, %"),
        MetricInfo("caption_acc_colour", "caption colour", True, "own caption at gold photo turns names the gold colour, %"),
        MetricInfo("caption_acc_scene", "caption scene", True, "own caption at gold photo turns names the gold scene, %"),
        MetricInfo("caption_acc_all", "caption all", True, "own caption at gold photo turns names all three, %"),
        *(MetricInfo(f"photo_match_{kind}", f"shared photo {kind}", True,
                     f"gold photo turns whose shared photo (drawn from the own caption) shows the gold photo's {kind}, %")
          for kind in ("object", "colour", "scene")),
        MetricInfo("photo_match_all", "shared photo all", True,
                   "gold photo turns whose shared photo shows all three of the gold photo's attributes, %"),
        MetricInfo("reply_acc_object", "sees: object", True,
                   "reply right after an unannounced photo names its object, %"),
        MetricInfo(
            "probe_fid", "probe-FID", False, "Frechet distance in the probe's feature space, not Inception"
        ),
        MetricInfo(
            "probe_fid_generator", "probe-FID (gold captions)", False,
            "probe-FID of the photos drawn from the gold captions (the image generator alone)",
        ),
    )
}


# Which photos a probe accuracy is about (``probe_acc_<group>_<attribute>``), as tables name them.
_PROBE_GROUPS = {
    "caption": ("vs own caption", "generated photos against the model's own caption"),
    "gold": ("vs gold photo", "generated photos against the gold photo's attributes"),
    "generator": ("gold captions", "photos drawn from the gold captions (the image generator alone)"),
}
# The probe's key layout, in table order; probe_scores names its keys from these. They live here,
# not there, because metric_order needs them and probe_scores already imports this module.
PROBE_GROUPS = tuple(_PROBE_GROUPS)
PROBE_KINDS = ("object", "colour", "scene")  # the synthetic world's attributes, in the probe's order
# The shared photo vs the gold photo over every gold photo turn (``ProbeScorer.match_over_turns``).
PHOTO_MATCH_KEYS = tuple(f"photo_match_{kind}" for kind in (*PROBE_KINDS, "all"))
PROBE_FID_KEYS = ("probe_fid", "probe_fid_generator")


def metric_info(key: str) -> MetricInfo:
    """Label and direction of a metric key, including the families ``bleuN`` and ``probe_acc_X``."""
    if key in _KNOWN_METRICS:
        return _KNOWN_METRICS[key]
    bleu = re.fullmatch(r"bleu(\d+)", key)
    if bleu:
        return MetricInfo(key, f"BLEU-{bleu.group(1)}", True, "corpus BLEU, individual n-gram precision, x100")
    if key.startswith("probe_acc_"):
        group, _, attribute = key.removeprefix("probe_acc_").rpartition("_")
        if group in _PROBE_GROUPS:
            short, photos = _PROBE_GROUPS[group]
            return MetricInfo(key, f"{attribute} ({short})", True, f"probe: {attribute} accuracy of {photos}, %")
        return MetricInfo(key, f"{key.removeprefix('probe_acc_')} acc", True, "probe accuracy, %")
    return MetricInfo(key, key, None)


def _probe_accuracy_rank(key: str) -> tuple[int, int]:
    """(group, attribute) position of ``probe_acc_[<group>_]<attribute>`` in ``PROBE_GROUPS`` /
    ``PROBE_KINDS`` + "all"; a key without a group comes first, an unknown part last."""
    group, _, kind = key.removeprefix("probe_acc_").rpartition("_")
    groups, kinds = ("", *PROBE_GROUPS), (*PROBE_KINDS, "all")
    group_rank = groups.index(group) if group in groups else len(groups)
    kind_rank = kinds.index(kind) if kind in kinds else len(kinds)
    return group_rank, kind_rank


def metric_order(keys) -> list[str]:
    """Keys in the order tables show them: Table 2, other BLEU orders, share moment, probe
    accuracies (by group, then attribute: the order of ``PROBE_GROUPS`` and ``PROBE_KINDS``,
    whichever were measured or seen first), probe totals, then the rest by name."""
    keys = [k for k in dict.fromkeys(keys) if k != IS_SPLIT_STD]
    table2 = [k for k in TABLE2_METRICS if k in keys]
    bleus = sorted((k for k in keys if re.fullmatch(r"bleu\d+", k) and k not in table2), key=lambda k: int(k[4:]))
    share = [k for k in SHARE_MOMENT_METRICS if k in keys]
    share += [k for k in CAPTION_METRICS if k in keys]
    # sorted() is stable: probe keys of an unknown group or attribute keep the order first seen.
    probe_accs = sorted((k for k in keys if k.startswith("probe_acc_")), key=_probe_accuracy_rank)
    match = [k for k in PHOTO_MATCH_KEYS if k in keys]
    probe_rest = [k for k in ("probe_all_correct", *PROBE_FID_KEYS) if k in keys]
    ordered = table2 + bleus + share + probe_accs + match + probe_rest
    return ordered + sorted(set(keys) - set(ordered))


@dataclass
class MetricSet:
    """What one scorer produced for one seed: values, metrics it could not compute, and counts.

    ``unavailable`` maps a metric key to ``{"reason": ..., "fix": ...}`` ("fix" optional);
    ``chance`` holds chance levels of some metrics (same scale as the metric).
    """

    values: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, dict[str, str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)


class HasMetricSet(Protocol):
    def as_metric_set(self) -> MetricSet: ...


def unavailable_entry(reason: str, fix: str | None = None) -> dict[str, str]:
    """The ``{"reason", "fix"}`` record of a metric that could not be computed."""
    entry = {"reason": reason}
    if fix:
        entry["fix"] = fix
    return entry


def unavailable_record(reason: str, fix: str | None = None) -> dict[str, Any]:
    """``{"available": False, "reason", "fix"}``: an aggregate entry (or a scorer's whole answer)
    for what could not be computed at all."""
    return {"available": False, **unavailable_entry(reason, fix)}


@dataclass
class SeedResult:
    """Everything measured with one seed; the evaluation loop fills one per seed with ``add``."""

    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, dict[str, str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)

    def add(self, scores: MetricSet | HasMetricSet) -> "SeedResult":
        """Merge a scorer's output (a MetricSet or anything with ``as_metric_set()``)."""
        metric_set = scores if isinstance(scores, MetricSet) else scores.as_metric_set()
        for key, value in metric_set.values.items():
            if value is None or not math.isfinite(float(value)):
                # A NaN would poison the mean over seeds and break strict JSON; say so instead.
                self.mark_unavailable([key], f"the value was {value!r}")
            else:
                self.metrics[key] = float(value)
                self.unavailable.pop(key, None)
        for key, entry in metric_set.unavailable.items():
            self.mark_unavailable([key], entry["reason"], entry.get("fix"))
        self.counts.update(metric_set.counts)
        self.chance.update(metric_set.chance)
        return self

    def mark_unavailable(self, keys: Sequence[str], reason: str, fix: str | None = None) -> "SeedResult":
        """Record that these metrics could not be computed for this seed, and why."""
        for key in keys:
            self.metrics.pop(key, None)
            self.unavailable[key] = unavailable_entry(reason, fix)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "metrics": dict(self.metrics),
            "unavailable": {k: dict(v) for k, v in self.unavailable.items()},
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "SeedResult":
        return cls(
            seed=obj["seed"],
            metrics=dict(obj.get("metrics", {})),
            unavailable={k: dict(v) for k, v in obj.get("unavailable", {}).items()},
            counts=dict(obj.get("counts", {})),
        )

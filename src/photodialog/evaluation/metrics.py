"""The metrics an evaluation reports and the result that holds them: their keys, labels,
directions and table order (the one list of metric names), the per-seed record the scorers fill
(``MetricSet``, ``SeedResult``), their mean and spread over seeds, and the eval result JSON.

Scales: BLEU, ROUGE-L, share-moment P/R/F1 and probe accuracies are percentages (0-100, as in
the paper's Table 2); IS, FID and probe-FID are raw. A new metric is a scorer returning a
``MetricSet`` (``text_metrics``, ``share_moment``, ``image_metrics``, ``attribute_metrics``), its
``MetricInfo`` line in ``_KNOWN_METRICS`` below, and its call in ``runner.SeedScorer``.

**Mean and spread over seeds** (the paper reports the average of 3 seeds). Definitions, for a metric measured on seeds s_1..s_n where it was available:

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

**The eval result**: one JSON document per evaluated model. An eval result holds what was evaluated, how, and the scores of every seed with their
aggregate over seeds. Schema ``photodialog.eval/1``::

    {
      "schema": "photodialog.eval/1",
      "photodialog_version": "0.1.0",
      "created": "2025-01-01T12:00:00+00:00",
      "model": {"name": "end-to-end", ...},          # "name" required; anything else free
      "data": {"dataset": "synthetic", "split": "test", ...},   # both required
      "settings": {...},                             # free: decoding, image size, weights
      "seeds": [0, 1, 2],
      "per_seed": [
        {"seed": 0,
         "metrics": {"bleu1": 12.1, "is": 14.2, "is_split_std": 0.9, "fid": 75.1, ...},
         "unavailable": {"probe_fid": {"reason": "...", "fix": "..."}},
         "counts": {"turns": 1000, "generated_images": 120, ...}},
        ...
      ],
      "aggregate": {
        "bleu1": {"available": true, "mean": 12.08, "std": 0.11, "n": 3,
                  "values": [...], "seeds": [0, 1, 2]},
        "is": {"available": true, "mean": 14.47, "std": 0.2, "split_std": 0.94, ...},
        "fid": {"available": false, "reason": "...", "fix": "..."},
        ...
      },
      "chance": {"probe_acc_object": 12.5, ...}      # chance levels of probe accuracies
    }

An evaluation loop fills one ``SeedResult`` per seed from the scorers and builds the result::

    seed_result = SeedResult(seed)
    seed_result.add(text_scores(predicted_texts, gold_texts))
    seed_result.add(share_moment_scores(predicted_texts, gold_texts))
    seed_result.add(fidelity_metric_set(fidelity_scores(generated_dir, gold_photo_dir,
                                                        inception_weights=weights, device=device)))
    ...
    result = build_result(model={"name": ...}, data={"dataset": ..., "split": ...},
                          seed_results=seed_results, settings={...})
    save_result(result, "eval.json"); print(report([result]))

Every Table 2 and share-moment metric must end up either measured or marked with
``SeedResult.mark_unavailable(keys, reason, fix)``: ``validate_result`` refuses a result
where one is silently missing.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from photodialog import __version__, json_limits
from photodialog.errors import UserError
from photodialog.files import write_text


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
# The probe's key layout, in table order; attribute_metrics names its keys from these. They live here,
# not there, because metric_order needs them and attribute_metrics already imports this module.
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


# ---- Mean and spread of every metric over seeds (the paper reports the average of 3 seeds) ----

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


# ---- The eval result: one JSON document per evaluated model, its schema, and its metric names ----

SCHEMA_VERSION = "photodialog.eval/1"


def build_result(
    *,
    model: Mapping[str, Any],
    data: Mapping[str, Any],
    seed_results: Sequence[SeedResult],
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a validated eval result from the per-seed results (aggregating over seeds)."""
    seeds = [sr.seed for sr in seed_results]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"each seed may be evaluated once; got seeds {seeds}")
    chance: dict[str, float] = {}
    for sr in seed_results:
        chance.update(sr.chance)
    result = {
        "schema": SCHEMA_VERSION,
        "photodialog_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": dict(model),
        "data": dict(data),
        "settings": dict(settings or {}),
        "seeds": seeds,
        "per_seed": [sr.to_dict() for sr in seed_results],
        "aggregate": aggregate_seeds(seed_results),
        "chance": chance,
    }
    return validate_result(result)


def _require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    name = f"{where}.{key}" if where else key
    if not isinstance(obj, Mapping) or key not in obj:
        raise UserError(f"eval result is missing field '{name}'")
    if not _is_kind(obj[key], kind):
        raise UserError(f"eval result field '{name}' should be {_kind_name(kind)}, got {type(obj[key]).__name__}")
    return obj[key]


def _is_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
    # bool is a subclass of int, but True is not a seed, a count or a score.
    if isinstance(value, bool) and bool not in _as_tuple(kind):
        return False
    return isinstance(value, kind)


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _validate_aggregate_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, Mapping):
        raise UserError(f"eval result field '{where}' should be an object")
    if _require(entry, "available", bool, where):
        for key in ("mean", "std"):
            _require(entry, key, (int, float), where)
        _require(entry, "n", int, where)
        if where.endswith(".is"):
            _require(entry, "split_std", (int, float), where)
    else:
        _require(entry, "reason", str, where)


def validate_result(obj: Any) -> dict[str, Any]:
    """Check an eval result against the schema; raise ``UserError`` naming the first bad field.

    Every Table 2 metric and the share-moment P/R/F1 must be in ``aggregate``, either with
    values or marked unavailable with a reason. Returns ``obj`` unchanged.
    """
    if not isinstance(obj, Mapping):
        raise UserError(f"an eval result must be a JSON object, got {type(obj).__name__}")
    schema = _require(obj, "schema", str, "")
    if schema != SCHEMA_VERSION:
        raise UserError(f"eval result has schema '{schema}'; this version reads '{SCHEMA_VERSION}'")
    _require(_require(obj, "model", Mapping, ""), "name", str, "model")
    data = _require(obj, "data", Mapping, "")
    _require(data, "dataset", str, "data")
    _require(data, "split", str, "data")
    seeds = _require(obj, "seeds", list, "")
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"eval result field 'seeds' should be a non-empty list of integers, got {seeds!r}")
    per_seed = _require(obj, "per_seed", list, "")
    for i, entry in enumerate(per_seed):
        _require(entry, "seed", int, f"per_seed[{i}]")
        _require(entry, "metrics", Mapping, f"per_seed[{i}]")
    if [entry["seed"] for entry in per_seed] != seeds:
        raise UserError("eval result fields 'seeds' and 'per_seed[*].seed' disagree")
    aggregate = _require(obj, "aggregate", Mapping, "")
    for key in REQUIRED_METRICS:
        _require(aggregate, key, Mapping, "aggregate")
    for key, entry in aggregate.items():
        _validate_aggregate_entry(entry, f"aggregate.{key}")
    _require(obj, "chance", Mapping, "")
    return obj  # type: ignore[return-value]


def save_result(result: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Validate and write a result as JSON, atomically (a crash never leaves half a file)."""
    validate_result(result)
    path = Path(path)
    # allow_nan=False: a NaN would make the file unreadable by strict JSON parsers.
    write_text(path, json.dumps(result, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate an eval result JSON; ``UserError`` if missing, not JSON, or off-schema."""
    path = Path(path)
    too_large = json_limits.file_too_large(path, json_limits.MAX_RESULT_BYTES)
    if too_large:
        raise UserError(f"{too_large}; an eval result is a small JSON file (photodialog eval writes it)")
    try:
        obj = json_limits.loads(path.read_text(encoding="utf-8"))
    except json_limits.TooDeep as exc:
        raise UserError(f"{path} is {exc}; it is not an eval result") from None
    except (FileNotFoundError, NotADirectoryError):
        # NotADirectoryError: a parent of the path is a file (e.g. a result JSON given as a folder).
        raise UserError(f"eval result file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read the eval result {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a JSON eval result: {exc}") from None
    try:
        return validate_result(obj)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None

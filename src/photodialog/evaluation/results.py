"""The eval result: one JSON document per evaluated model, its schema, and its metric names.

An eval result holds what was evaluated, how, and the scores of every seed with their
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

Scales: BLEU, ROUGE-L, share-moment P/R/F1 and probe accuracies are percentages (0-100,
as in the paper's Table 2); IS, FID and probe-FID are raw. What ``std`` and ``split_std``
mean is defined in :mod:`photodialog.evaluation.aggregate`.

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
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from photodialog import __version__, json_limits
from photodialog.errors import UserError
from photodialog.evaluation.aggregate import aggregate_seeds
from photodialog.evaluation.metrics import REQUIRED_METRICS, SeedResult
from photodialog.files import write_text

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

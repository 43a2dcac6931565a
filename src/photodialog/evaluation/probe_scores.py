"""Scores of photos in the synthetic world, read by the world's probe classifier (docs/architecture.md, "The synthetic world").

In the synthetic world a photo's content is known from its caption (one object, one colour,
one scene), and a small probe classifier reads it back off any photo. Three groups of
accuracies (%), keys ``probe_acc_<group>_<attribute>`` and ``probe_acc_<group>_all`` (every
attribute right), each with its chance level:

- ``caption``: every generated photo against the attributes named in the model's *own*
  caption: does the image generator draw what the language model asked for? A caption that
  names no attribute cannot be checked and is left out (``probe_caption_unchecked``).
- ``gold``: the generated photo of every turn where the gold response shares a photo too,
  against the *gold photo's* attributes: did the whole system share the right content?
- ``generator``: photos drawn by the image generator from the *gold captions* of the target
  turns that share a photo: the image generator alone, on the same input for every model.

And two Frechet distances in the probe's feature space (not Inception, labelled so):
``probe_fid`` (generated set vs the reference set of gold photos, as FID) and
``probe_fid_generator`` (the ``generator`` photos vs the same reference set).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import math

import numpy as np

from photodialog.data.layout import WORLD_FILE
from photodialog.data.loading import dataset_root
from photodialog.data.synth.attributes import article
from photodialog.data.synth.probe import Probe
from photodialog.errors import DataError
from photodialog.evaluation.attribute_metrics import attribute_scores, probe_fid_metric_set
from photodialog.evaluation.metrics import (
    PHOTO_MATCH_KEYS,
    PROBE_FID_KEYS,
    PROBE_GROUPS,
    PROBE_KINDS,
    MetricSet,
    unavailable_entry,
)

KINDS = PROBE_KINDS  # the world's attributes, in the probe's order
GROUPS = PROBE_GROUPS
FID_KEYS = PROBE_FID_KEYS
PROBE_FIX = "train the world's probe: photodialog data probe {world}"

GROUP_MEANING = {
    "caption": "generated photos vs the attributes named in the model's own caption",
    "gold": "generated photos vs the gold photo's attributes (turns where both share a photo)",
    "generator": "photos drawn from the gold captions vs their attributes (the image generator alone)",
}
NO_PHOTO_REASON = {
    "caption": "no generated photo whose caption names an object, colour or scene",
    "gold": "no turn where both the model and the gold response share a photo",
    "generator": "no target turn shares a photo with a caption",
}


def group_keys(group: str) -> list[str]:
    """The accuracy keys of one group, in table order."""
    return [f"probe_acc_{group}_{kind}" for kind in KINDS] + [f"probe_acc_{group}_all"]


def all_probe_keys() -> list[str]:
    return [key for group in GROUPS for key in group_keys(group)] + list(PHOTO_MATCH_KEYS) + list(FID_KEYS)


def _renamed(metric_set: MetricSet, group: str) -> MetricSet:
    """``probe_acc_X`` -> ``probe_acc_<group>_X`` and ``probe_all_correct`` -> ``probe_acc_<group>_all``."""
    def key(name: str) -> str:
        if name == "probe_all_correct":
            return f"probe_acc_{group}_all"
        return name.replace("probe_acc_", f"probe_acc_{group}_", 1)

    return MetricSet(
        values={key(k): v for k, v in metric_set.values.items()},
        chance={key(k): v for k, v in metric_set.chance.items()},
        counts={k.replace("probe_", f"probe_{group}_", 1): v for k, v in metric_set.counts.items()},
    )


class ProbeScorer:
    """Scores photos with a trained ``Probe`` (anything with ``predict``, ``features``, ``config``)."""
    def __init__(self, probe, source: str = ""):
        self.probe = probe
        self.source = source
        self.num_classes = {kind: len(probe.config.classes(kind)) for kind in KINDS}

    def accuracy(self, group: str, photos: Sequence, targets: Sequence[dict]) -> MetricSet:
        """One group's accuracies of ``photos`` against target attribute dicts (None = not named)."""
        if len(photos) != len(targets):
            raise ValueError(f"{len(photos)} photos but {len(targets)} targets")
        checkable = [i for i, target in enumerate(targets) if any(target.get(k) for k in KINDS)]
        counts = {f"probe_{group}_unchecked": len(photos) - len(checkable)}
        if not checkable:
            entry = unavailable_entry(NO_PHOTO_REASON[group])
            return MetricSet(unavailable={key: dict(entry) for key in group_keys(group)}, counts=counts)
        predicted = self.probe.predict([photos[i] for i in checkable])
        wanted = [{k: targets[i].get(k) for k in KINDS} for i in checkable]
        scores = attribute_scores(predicted, wanted, attributes=KINDS, num_classes=self.num_classes)
        renamed = _renamed(scores.as_metric_set(), group)
        renamed.counts.update(counts)
        for kind, accuracy in scores.per_attribute.items():
            if accuracy.total == 0:  # no target names this attribute: 0 % would be a made-up score
                key = f"probe_acc_{group}_{kind}"
                renamed.values.pop(key, None)
                renamed.unavailable[key] = unavailable_entry(f"no {group} target names {article(kind)} {kind}")
        return renamed

    def match_over_turns(self, photos: Sequence, targets: Sequence[dict]) -> MetricSet:
        """``photo_match_{object,colour,scene,all}`` (%): at every gold photo turn, the photo the model
        shared (``photos[i]``, drawn from its own caption; None where it shared none) shows what the
        gold photo shows (``targets[i]``, its attributes), read by the probe. Counted over **all**
        gold photo turns, so a turn without a photo is a miss and every model is scored on the same
        turns (the demo's primary endpoint: docs/demo/report.md). ``photo_match_turns`` counts them."""
        if len(photos) != len(targets):
            raise ValueError(f"{len(photos)} photos but {len(targets)} gold photo turns")
        keys = [f"photo_match_{kind}" for kind in (*KINDS, "all")]
        if not targets:
            entry = unavailable_entry("no gold photo turn")
            return MetricSet(unavailable={key: dict(entry) for key in keys}, counts={"photo_match_turns": 0})
        drawn = [i for i, photo in enumerate(photos) if photo is not None]
        predicted = dict(zip(drawn, self.probe.predict([photos[i] for i in drawn]))) if drawn else {}
        hits = {kind: 0 for kind in (*KINDS, "all")}
        for i, target in enumerate(targets):
            seen = predicted.get(i, {})
            right = {kind: target.get(kind) is not None and seen.get(kind) == target.get(kind) for kind in KINDS}
            for kind in KINDS:
                hits[kind] += right[kind]
            hits["all"] += all(right.values())
        n = len(targets)
        values = {f"photo_match_{kind}": 100.0 * hits[kind] / n for kind in hits}
        chance = {f"photo_match_{kind}": 100.0 / self.num_classes[kind] for kind in KINDS}
        chance["photo_match_all"] = 100.0 / math.prod(self.num_classes.values())
        return MetricSet(values=values, chance=chance, counts={"photo_match_turns": n, "photo_match_shared": len(drawn)})

    def features(self, photos: Sequence) -> np.ndarray:
        return self.probe.features(list(photos))

    def frechet(self, key: str, photos: Sequence, reference_features: np.ndarray) -> MetricSet:
        """``key`` = the probe-feature Frechet distance of ``photos`` to the reference features."""
        features = self.features(photos) if len(photos) else np.zeros((0, reference_features.shape[1]))
        metric_set = probe_fid_metric_set(features, reference_features)
        return MetricSet(
            values={key: v for v in metric_set.values.values()},
            unavailable={key: e for e in metric_set.unavailable.values()},
            counts={k.replace("probe_fid", key, 1): v for k, v in metric_set.counts.items()},
        )


def load_probe_scorer(data_path: str | Path) -> tuple[ProbeScorer | None, dict[str, str] | None]:
    """(scorer, None) for a synthetic world with a trained probe; (None, None) when the data is
    not a synthetic world (no probe metrics at all); (None, unavailable entry) when the world
    has no trained probe (probe metrics marked unavailable with the fix)."""

    root = dataset_root(data_path)
    if not (root / WORLD_FILE).is_file():
        return None, None
    try:
        return ProbeScorer(Probe.load(root), str(root)), None
    except (DataError, OSError, ValueError, KeyError, RuntimeError) as err:  # missing, or a corrupt probe/ folder
        return None, unavailable_entry(f"probe metrics not computed: {err}", PROBE_FIX.format(world=root))

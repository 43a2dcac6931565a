"""Objective scores in the synthetic world, where the rendering is known: what the generated photos
show (read by the world's probe classifier), what the own caption and the reply to a photo name.

A probe classifier (trained elsewhere on the world's photos) reads the attributes of each
generated photo, e.g. ``{"object": "cup", "colour": "red", "scene": "kitchen"}``; this module
compares them with the attributes the photo should have (from the gold caption).

- per-attribute accuracy: the share of photos whose predicted value equals the target, %;
- all-correct accuracy: the share of photos with every attribute right, %;
- chance level: uniform guessing, 100 / K for K classes (product over the attributes for
  all-correct).

K comes from ``num_classes`` when given; otherwise it is the number of distinct values seen in
targets and predictions, which can only under-count the classes (so chance is then an upper
bound). A target value of None means "not defined for this photo": that photo is left out of
that attribute's accuracy and needs only its defined attributes right to be all-correct. A
predicted dict lacking an attribute counts as wrong on it.

``frechet_distance`` is the FID formula in any feature space; with the probe's features it
gives "probe-FID (probe feature space, not Inception)".

**The probe scores** (``ProbeScorer``; docs/architecture.md, "The synthetic world"). In the synthetic world a photo's content is known from its caption (one object, one colour,
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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from photodialog.data.layout import WORLD_FILE
from photodialog.data.loading import dataset_root
from photodialog.data.schema import PHOTO_SPAN, Sample
from photodialog.data.synth.attributes import COLOURS, OBJECTS, SCENES, article, find_attributes
from photodialog.data.synth.probe import Probe
from photodialog.errors import DataError
from photodialog.evaluation.metrics import PHOTO_MATCH_KEYS, PROBE_FID_KEYS, PROBE_GROUPS, PROBE_KINDS, MetricSet, unavailable_entry


Attributes = Mapping[str, str | None]


@dataclass
class AttributeAccuracy:
    """Accuracy of one attribute with its chance level; rates in percent."""

    attribute: str
    correct: int
    total: int
    classes: int

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    @property
    def chance(self) -> float:
        return 100.0 / self.classes if self.classes else 0.0


@dataclass
class AttributeScores:
    """Per-attribute and all-correct accuracy of generated photos, with chance levels (%)."""

    per_attribute: dict[str, AttributeAccuracy]
    all_correct: int
    photos: int

    @property
    def all_correct_accuracy(self) -> float:
        return 100.0 * self.all_correct / self.photos if self.photos else 0.0

    @property
    def all_correct_chance(self) -> float:
        # Independent uniform guesses are all right with the product of their chances.
        return 100.0 * math.prod(acc.chance / 100.0 for acc in self.per_attribute.values())

    def as_metric_set(self) -> MetricSet:
        values = {f"probe_acc_{name}": acc.accuracy for name, acc in self.per_attribute.items()}
        values["probe_all_correct"] = self.all_correct_accuracy
        chance = {f"probe_acc_{name}": acc.chance for name, acc in self.per_attribute.items()}
        chance["probe_all_correct"] = self.all_correct_chance
        return MetricSet(values=values, counts={"probe_photos": self.photos}, chance=chance)


def _check_targets(targets: Sequence[Attributes], attributes: Sequence[str]) -> None:
    for index, target in enumerate(targets):
        missing = [name for name in attributes if name not in target]
        if missing:
            raise DataError(f"target attributes of photo {index} lack {missing} (have {sorted(target)})")


def _accuracy_of(
    name: str, predicted: Sequence[Attributes], targets: Sequence[Attributes], classes: int | None
) -> AttributeAccuracy:
    pairs = [(pred.get(name), target[name]) for pred, target in zip(predicted, targets) if target[name] is not None]
    seen = {t for _, t in pairs} | {p for p, _ in pairs if p is not None}
    return AttributeAccuracy(
        attribute=name,
        correct=sum(p == t for p, t in pairs),
        total=len(pairs),
        classes=classes if classes else len(seen),
    )


def attribute_scores(
    predicted: Sequence[Attributes],
    targets: Sequence[Attributes],
    *,
    attributes: Sequence[str] | None = None,
    num_classes: Mapping[str, int] | None = None,
) -> AttributeScores:
    """Per-attribute and all-correct accuracy of probe predictions against target attributes.

    ``attributes`` defaults to the keys of the first target, in order. Raises ``DataError``
    when a target lacks an attribute or there are no photos, ``ValueError`` on a length mismatch.
    """
    if len(predicted) != len(targets):
        raise ValueError(f"{len(predicted)} predicted attribute sets but {len(targets)} targets")
    if not targets:
        raise DataError("no generated photos to score with the probe")
    attributes = list(attributes if attributes is not None else targets[0].keys())
    _check_targets(targets, attributes)
    num_classes = num_classes or {}
    per_attribute = {name: _accuracy_of(name, predicted, targets, num_classes.get(name)) for name in attributes}

    def defined(target: Attributes) -> tuple:
        return tuple((name, target[name]) for name in attributes if target[name] is not None)

    all_correct = sum(
        all(pred.get(name) == value for name, value in defined(target)) for pred, target in zip(predicted, targets)
    )
    return AttributeScores(per_attribute, all_correct, len(targets))


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr(sqrtm(A @ B)) as the trace of sqrt(A^1/2 B A^1/2), which has the same eigenvalues.

    The symmetric form keeps everything real: no complex parts to discard, unlike sqrtm(A @ B).
    """
    root_a = _symmetric_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def _as_feature_matrix(features, name: str) -> np.ndarray:
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a (samples, dims) matrix, got shape {matrix.shape}")
    if matrix.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples for a covariance, got {matrix.shape[0]}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return matrix


def frechet_distance(features_a, features_b, *, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    d = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2), with unbiased covariances.
    When a set has no more samples than dimensions its covariance is singular; then ``eps``
    is added to the diagonal of *both* covariances (as pytorch-fid does when sqrtm fails), so
    that both are positive definite and the square roots are well conditioned. This moves the
    distance by O(eps x dims) and keeps d(a, a) = 0 up to round-off; a negative result is clipped to 0.
    """
    a, b = _as_feature_matrix(features_a, "features_a"), _as_feature_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    dims = a.shape[1]
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    if min(a.shape[0], b.shape[0]) <= dims:
        cov_a = cov_a + eps * np.eye(dims)
        cov_b = cov_b + eps * np.eye(dims)
    mean_gap = a.mean(axis=0) - b.mean(axis=0)
    distance = mean_gap @ mean_gap + np.trace(cov_a) + np.trace(cov_b) - 2.0 * _trace_sqrt_product(cov_a, cov_b)
    return max(float(distance), 0.0)


def probe_fid_metric_set(generated_features, reference_features, *, eps: float = 1e-6) -> MetricSet:
    """``probe_fid`` as a MetricSet, or marked unavailable when a set is too small to fit."""
    counts = {"probe_fid_generated": len(generated_features), "probe_fid_reference": len(reference_features)}
    if min(len(generated_features), len(reference_features)) < 2:
        reason = (
            f"probe-FID needs at least 2 photos per set (generated {counts['probe_fid_generated']}, "
            f"reference {counts['probe_fid_reference']})"
        )
        return MetricSet(unavailable={"probe_fid": unavailable_entry(reason)}, counts=counts)
    distance = frechet_distance(generated_features, reference_features, eps=eps)
    return MetricSet(values={"probe_fid": distance}, counts=counts)


# --- What the language model says about a photo (text only: no probe, no generator) -----------
# Keys ``caption_acc_<kind>`` / ``caption_acc_all`` and ``reply_acc_object``, percentages.
CAPTION_KINDS = ("object", "colour", "scene")


def gold_photo_attributes(samples: Sequence[Sample], truth: Mapping[str, Mapping[str, str]] | None = None) -> dict[int, dict]:
    """Sample index -> what its first gold photo shows, for every sample whose response shares a
    photo: ``truth[photo_id]`` where the world keeps it (``data.synth.world.photo_attributes``: a
    world whose captions leave the colour out), else its caption read back (``find_attributes``)."""
    truth = truth or {}
    found = {}
    for index, sample in enumerate(samples):
        if sample.response.photos:
            photo = sample.response.photos[0]
            known = truth.get(str(photo.photo_id)) if photo.photo_id is not None else None
            found[index] = dict(known) if known else find_attributes(photo.caption)
    return found


def caption_accuracy(own: Sequence[str | None], gold: Sequence[str | Mapping[str, str | None]]) -> MetricSet:
    """Does the model's own caption at each gold photo turn name what the gold photo shows?

    ``own[i]``: the first caption the model wrote at gold photo turn ``i`` (None when it shared no
    photo there); ``gold[i]``: that turn's gold caption, or what its photo shows (an attribute dict,
    ``gold_photo_attributes``). Counted over **all** gold photo turns: a
    turn where the model shares nothing, or shares a caption that names no attribute, is wrong.
    Attributes are read with the synthetic world's word lists (``find_attributes``); a gold
    caption that names none of an attribute leaves that turn out of that attribute (and of
    ``all``'s requirement). Keys ``caption_acc_{object,colour,scene,all}`` (%), their chance levels
    (uniform guessing over the world's classes), and the count ``caption_turns``. Raises
    ``ValueError`` on a length mismatch; no turn gives every key unavailable.
    """
    if len(own) != len(gold):
        raise ValueError(f"{len(own)} own captions but {len(gold)} gold captions")
    keys = [f"caption_acc_{kind}" for kind in (*CAPTION_KINDS, "all")]
    targets = [find_attributes(g) if isinstance(g, str) else {k: g.get(k) for k in CAPTION_KINDS} for g in gold]
    checkable = [i for i, target in enumerate(targets) if any(target.values())]
    if not checkable:
        entry = unavailable_entry("no gold photo turn whose caption names an object, colour or scene")
        return MetricSet(unavailable={key: dict(entry) for key in keys}, counts={"caption_turns": 0})
    predicted = [find_attributes(own[i]) if own[i] else {} for i in checkable]
    classes = {"object": len(OBJECTS), "colour": len(COLOURS), "scene": len(SCENES)}
    scores = attribute_scores(predicted, [targets[i] for i in checkable], attributes=CAPTION_KINDS, num_classes=classes)
    values = {f"caption_acc_{kind}": acc.accuracy for kind, acc in scores.per_attribute.items()}
    values["caption_acc_all"] = scores.all_correct_accuracy
    chance = {f"caption_acc_{kind}": acc.chance for kind, acc in scores.per_attribute.items()}
    chance["caption_acc_all"] = scores.all_correct_chance
    return MetricSet(values=values, counts={"caption_turns": len(checkable)}, chance=chance)


def reply_object_accuracy(replies: Sequence[str], objects: Sequence[str]) -> float:
    """% of ``replies`` that name the object ``objects[i]`` of the photo they answer (the first
    object word of the reply must be it). The measure of "the model reads the photo": used on
    contexts whose text does not name the object. Raises ``ValueError`` on a length mismatch or none."""
    if len(replies) != len(objects) or not replies:
        raise ValueError(f"{len(replies)} replies for {len(objects)} photos")
    return 100.0 * sum(find_attributes(r)["object"] == o for r, o in zip(replies, objects)) / len(replies)


def unannounced_photo_turns(samples: list[Sample]) -> dict[int, str]:
    """Sample index -> object of the photo it answers, for samples right after a context photo
    whose object the context's text (photo captions left out) never names."""
    found = {}
    for index, sample in enumerate(samples):
        if not sample.context or not sample.context[-1].photos:
            continue
        photo_object = find_attributes(sample.context[-1].photos[-1].caption)["object"]
        said = " ".join(PHOTO_SPAN.sub(" ", turn.text) for turn in sample.context)
        if photo_object is not None and find_attributes(said)["object"] != photo_object:
            found[index] = photo_object
    return found


# ---- Scores of photos in the synthetic world, read by the world's probe classifier (docs/architecture.md, "The synthetic world") ----

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

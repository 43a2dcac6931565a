"""Share-moment precision / recall / F1: does the model share a photo exactly when the gold does?

A response *shares a photo* when it contains at least one ``[IMG] caption [/IMG]`` span with
a non-empty caption. A span with nothing between the markers (``[IMG] [/IMG]``) gives the
diffusion model nothing to draw, so it does not count as sharing; such spans are counted
separately (``empty_caption_turns``) so a model that emits them is visible.

Over (predicted, gold) response pairs, "shares a photo" is the positive class:
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean, all in percent.
A ratio with a zero denominator (a model that never shares, a gold set with no photo turn)
is 0, as scikit-learn's default ``zero_division``; the counts say which case it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from photodialog.data.schema import captions_in
from photodialog.evaluation.metrics import MetricSet


def shares_photo(text: str) -> bool:
    """True when the text holds a photo span with a non-empty caption."""
    return any(caption for caption in captions_in(text))


def has_empty_photo_span(text: str) -> bool:
    """True when the text holds a photo span whose caption is empty."""
    return any(not caption for caption in captions_in(text))


def _ratio(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator if denominator else 0.0


@dataclass
class ShareMomentScores:
    """Confusion counts of "this response shares a photo" and P/R/F1 in percent."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    empty_caption_turns: int = 0

    @property
    def turns(self) -> int:
        return self.true_positives + self.false_positives + self.false_negatives + self.true_negatives

    @property
    def predicted_shares(self) -> int:
        return self.true_positives + self.false_positives

    @property
    def gold_shares(self) -> int:
        return self.true_positives + self.false_negatives

    @property
    def precision(self) -> float:
        return _ratio(self.true_positives, self.predicted_shares)

    @property
    def recall(self) -> float:
        return _ratio(self.true_positives, self.gold_shares)

    @property
    def f1(self) -> float:
        # 2TP / (2TP + FP + FN) is the harmonic mean of P and R without dividing twice.
        return _ratio(2 * self.true_positives, 2 * self.true_positives + self.false_positives + self.false_negatives)

    def as_metric_set(self) -> MetricSet:
        values = {"share_precision": self.precision, "share_recall": self.recall, "share_f1": self.f1}
        counts = {
            "share_turns": self.turns,
            "share_predicted": self.predicted_shares,
            "share_gold": self.gold_shares,
            "share_true_positives": self.true_positives,
            "share_false_positives": self.false_positives,
            "share_false_negatives": self.false_negatives,
            "share_empty_caption_turns": self.empty_caption_turns,
        }
        return MetricSet(values=values, counts=counts)


def share_moment_scores(predicted: Sequence[str], gold: Sequence[str]) -> ShareMomentScores:
    """Share-moment confusion counts over aligned predicted and gold response texts."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted responses but {len(gold)} gold responses")
    tp = fp = fn = tn = 0
    for pred_text, gold_text in zip(predicted, gold):
        pred, truth = shares_photo(pred_text), shares_photo(gold_text)
        tp += pred and truth
        fp += pred and not truth
        fn += truth and not pred
        tn += not pred and not truth
    empty = sum(has_empty_photo_span(text) for text in predicted)
    return ShareMomentScores(tp, fp, fn, tn, empty_caption_turns=empty)


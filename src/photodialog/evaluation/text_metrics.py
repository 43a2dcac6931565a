"""BLEU-1, BLEU-2 and ROUGE-L of generated responses, per the evaluation protocol (docs/architecture.md, "Evaluation protocol").

Every text is first stripped of its ``[IMG] ... [/IMG]`` spans (``strip_photo_spans``) and
split on whitespace; case is kept. There is one reference per hypothesis.

BLEU-n (corpus level) = BP x p_n x 100, where p_n is the *individual* n-gram precision over
the corpus: the clipped n-gram matches summed over all turns divided by the number of
hypothesis n-grams summed over all turns (not the geometric mean of orders 1..n), and
BP = 1 if c > r else exp(1 - r / c), with c and r the total hypothesis and reference lengths.

ROUGE-L = the mean over turns of the sentence-level LCS F-measure (F1), x 100:
P = LCS / |hyp|, R = LCS / |ref|, F1 = 2PR / (P + R).

Edge cases (each also counted in ``TextScores``):

- empty hypothesis (nothing left after stripping photos): it adds no n-grams and length 0
  to c, while its reference still adds to r (so BLEU is penalised through BP); ROUGE-L 0.
- empty reference (e.g. a gold turn that only shares a photo): it adds 0 to r, and the
  hypothesis n-grams count in the denominators with no possible match; ROUGE-L 0.
- both empty: ROUGE-L 0 too (as ``rouge_score``).
- no hypothesis n-gram of order n in the whole corpus: p_n is 0/0, defined as 0, so BLEU-n = 0.
- c = 0 (every hypothesis empty): BP = 0, so every BLEU is 0.

``nltk_denominators=True`` reproduces a quirk of ``nltk.translate.bleu_score.corpus_bleu``:
nltk counts max(1, number of n-grams) per hypothesis in the denominator, so a hypothesis
shorter than n tokens still adds 1. The protocol counts true n-grams; default False.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from photodialog.data.schema import strip_photo_spans
from photodialog.errors import DataError
from photodialog.evaluation.metrics import MetricSet


def tokens(text: str) -> list[str]:
    """Whitespace tokens of a text with its photo spans removed (case kept)."""
    return strip_photo_spans(text).split()


def ngram_counts(words: Sequence[str], n: int) -> Counter:
    """How often each n-gram (a tuple of n tokens) occurs in ``words``."""
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass
class NgramPrecision:
    """Clipped n-gram matches and hypothesis n-grams of one order, summed over a corpus."""

    order: int
    matches: int = 0
    total: int = 0

    @property
    def value(self) -> float:
        return self.matches / self.total if self.total else 0.0


def brevity_penalty(hypothesis_length: int, reference_length: int) -> float:
    """BLEU's brevity penalty: 1 if c > r, else exp(1 - r/c); 0 when c = 0."""
    if hypothesis_length == 0:
        return 0.0
    if hypothesis_length > reference_length:
        return 1.0
    return math.exp(1.0 - reference_length / hypothesis_length)


def corpus_ngram_precision(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    order: int,
    *,
    nltk_denominators: bool = False,
) -> NgramPrecision:
    """Clipped matches / hypothesis n-grams of one order over tokenised pairs."""
    precision = NgramPrecision(order)
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_counts, ref_counts = ngram_counts(hyp, order), ngram_counts(ref, order)
        # Clipping: an n-gram matches at most as often as it occurs in the reference.
        precision.matches += sum(min(count, ref_counts[gram]) for gram, count in hyp_counts.items())
        n_grams = sum(hyp_counts.values())
        precision.total += max(1, n_grams) if nltk_denominators else n_grams
    return precision


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token_a == token_b else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def sentence_rouge_l(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """LCS F1 of one tokenised pair, in [0, 1]; 0 when either side is empty."""
    if not hypothesis or not reference:
        return 0.0
    lcs = lcs_length(hypothesis, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hypothesis), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


@dataclass
class TextScores:
    """Corpus BLEU-n and mean ROUGE-L (x100) with what went into them.

    ``turns`` counts the scored pairs; ``empty_hypotheses`` and ``empty_references`` those
    among them with an empty hypothesis or reference.
    """

    bleu: dict[int, float]
    rouge_l: float
    precisions: dict[int, NgramPrecision]
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int
    turns: int
    empty_hypotheses: int = 0
    empty_references: int = 0
    rouge_l_per_turn: list[float] = field(default_factory=list, repr=False)

    @property
    def bleu1(self) -> float:
        return self.bleu[1]

    @property
    def bleu2(self) -> float:
        return self.bleu[2]

    def as_metric_set(self) -> MetricSet:
        values = {f"bleu{order}": value for order, value in self.bleu.items()}
        values["rouge_l"] = self.rouge_l
        counts = {
            "text_turns": self.turns,
            "text_empty_hypotheses": self.empty_hypotheses,
            "text_empty_references": self.empty_references,
        }
        return MetricSet(values=values, counts=counts)


def text_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    orders: Sequence[int] = (1, 2),
    nltk_denominators: bool = False,
) -> TextScores:
    """BLEU-n for each of ``orders`` and ROUGE-L of generated vs gold responses (raw texts).

    Photo spans are removed here; see the module docstring for every edge case.
    Raises ``ValueError`` if the lists differ in length and ``DataError`` if no turn is left.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyp_tokens = [tokens(h) for h in hypotheses]
    ref_tokens = [tokens(r) for r in references]
    if not hyp_tokens:
        raise DataError("no turns to score: the text metrics need at least one (hypothesis, reference) pair")

    c, r = sum(map(len, hyp_tokens)), sum(map(len, ref_tokens))
    bp = brevity_penalty(c, r)
    precisions = {
        n: corpus_ngram_precision(hyp_tokens, ref_tokens, n, nltk_denominators=nltk_denominators) for n in orders
    }
    per_turn = [sentence_rouge_l(h, ref) for h, ref in zip(hyp_tokens, ref_tokens)]
    return TextScores(
        bleu={n: 100.0 * bp * p.value for n, p in precisions.items()},
        rouge_l=100.0 * math.fsum(per_turn) / len(per_turn),
        precisions=precisions,
        brevity_penalty=bp,
        hypothesis_length=c,
        reference_length=r,
        turns=len(hyp_tokens),
        empty_hypotheses=sum(not h for h in hyp_tokens),
        empty_references=sum(not r for r in ref_tokens),
        rouge_l_per_turn=per_turn,
    )


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], order: int) -> float:
    """Corpus BLEU-``order`` (individual precision, x100) of raw texts."""
    return text_scores(hypotheses, references, orders=(order,)).bleu[order]


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean sentence-level ROUGE-L F1 (x100) of raw texts."""
    return text_scores(hypotheses, references, orders=()).rouge_l

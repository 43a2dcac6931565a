"""BLEU-n and ROUGE-L: hand-computed values, edge cases, and agreement with nltk and rouge_score."""

import math
import random

import pytest

from photodialog.errors import DataError
from photodialog.evaluation.text_metrics import (
    brevity_penalty,
    corpus_bleu,
    lcs_length,
    rouge_l,
    sentence_rouge_l,
    text_scores,
)


def test_hand_computed_corpus_with_brevity_penalty():
    hyps = ["the cat sat", "a dog [IMG] a dog on a sofa [/IMG]"]
    refs = ["the cat sat on the mat", "a big dog"]
    scores = text_scores(hyps, refs)
    # Tokens after stripping the photo span: h1 = the cat sat (3), h2 = a dog (2); r1 = 6, r2 = 3.
    # c = 5, r = 9, so BP = exp(1 - 9/5) = exp(-0.8).
    bp = math.exp(-0.8)
    assert scores.brevity_penalty == pytest.approx(bp)
    # Unigrams: the, cat, sat all in r1 (3); a, dog in r2 (2) -> 5 / 5.
    assert scores.bleu1 == pytest.approx(100 * bp * 5 / 5)
    # Bigrams: "the cat", "cat sat" in r1 (2); "a dog" not in r2 ("a big", "big dog") -> 2 / 3.
    assert scores.bleu2 == pytest.approx(100 * bp * 2 / 3)
    # ROUGE-L: t1 LCS 3, P = 3/3, R = 3/6, F = 2/3; t2 LCS 2 (a, dog), P = 1, R = 2/3, F = 0.8.
    assert scores.rouge_l == pytest.approx(100 * (2 / 3 + 0.8) / 2)
    assert scores.turns == 2


def test_clipping_counts_each_reference_ngram_once():
    # "the" x4 against a reference with one "the": 1 clipped match of 4; c = 4 > r = 2 so BP = 1.
    assert corpus_bleu(["the the the the"], ["the cat"], 1) == pytest.approx(25.0)


def test_bleu_is_individual_precision_not_geometric_mean():
    # p1 = 4/4, p2 = 1/3 ("a b" matches; "b x", "x d" do not), BP = 1 (c = r = 4):
    # BLEU-2 is 100 * 1/3 = 33.33, not the cumulative sqrt(1 * 1/3) * 100 = 57.7.
    assert corpus_bleu(["a b x d"], ["a b d x"], 2) == pytest.approx(100 / 3)


def test_precision_is_summed_over_the_corpus_not_averaged_per_turn():
    # Turn 1: 1 of 1 unigram matches; turn 2: 0 of 3. Corpus: 1/4 (a per-turn mean would be 1/2).
    # c = 4, r = 4 -> BP = 1.
    assert corpus_bleu(["yes", "no no no"], ["yes", "maybe so then"], 1) == pytest.approx(25.0)


def test_case_is_kept():
    assert corpus_bleu(["Hello"], ["hello"], 1) == 0.0
    assert corpus_bleu(["hello"], ["hello"], 1) == pytest.approx(100.0)


def test_photo_spans_are_removed_from_both_sides():
    hyp = "nice [IMG] a red cup on a table [/IMG] right"
    ref = "nice [IMG] a blue bowl [/IMG] right"
    scores = text_scores([hyp], [ref])
    assert scores.bleu1 == pytest.approx(100.0)
    assert scores.bleu2 == pytest.approx(100.0)
    assert scores.rouge_l == pytest.approx(100.0)


def test_empty_hypothesis_adds_reference_length_only():
    # h1 "a b" vs r1 "a b" (2 of 2 unigrams), h2 empty vs r2 "c d": c = 2, r = 4, BP = exp(1 - 2).
    scores = text_scores(["a b", ""], ["a b", "c d"])
    assert scores.empty_hypotheses == 1
    assert scores.bleu1 == pytest.approx(100 * math.exp(-1.0))
    # ROUGE-L: turn 1 F = 1, empty turn 0 -> mean 0.5.
    assert scores.rouge_l == pytest.approx(50.0)


def test_empty_reference_counts_hypothesis_ngrams_as_unmatched():
    # h2 "x y" has nothing to match: unigrams 2 of 4, c = 4 > r = 2 so BP = 1.
    scores = text_scores(["a b", "x y"], ["a b", "[IMG] a photo [/IMG]"])
    assert scores.empty_references == 1
    assert scores.bleu1 == pytest.approx(50.0)
    assert scores.rouge_l == pytest.approx(50.0)


def test_both_empty_scores_zero_rouge():
    hyps, refs = ["a b", "[IMG] cat [/IMG]"], ["a b", "[IMG] dog [/IMG]"]
    kept = text_scores(hyps, refs)
    assert kept.turns == 2 and kept.rouge_l == pytest.approx(50.0)  # both-empty turn scores 0, as rouge_score
    assert kept.empty_hypotheses == 1 and kept.empty_references == 1
    assert kept.bleu1 == pytest.approx(100.0)  # the empty pair adds no n-grams and no length


def test_no_ngrams_of_an_order_gives_zero_not_an_error():
    scores = text_scores(["a", "b"], ["a", "b"])  # one-token hypotheses have no bigrams
    assert scores.precisions[2].total == 0
    assert scores.bleu2 == 0.0
    assert scores.bleu1 == pytest.approx(100.0)


def test_all_hypotheses_empty_gives_zero():
    scores = text_scores(["", "[IMG] x [/IMG]"], ["a b", "c"])
    assert scores.brevity_penalty == 0.0
    assert scores.bleu1 == 0.0 and scores.bleu2 == 0.0 and scores.rouge_l == 0.0


def test_no_turns_and_mismatched_lengths_are_errors():
    with pytest.raises(DataError):
        text_scores([], [])
    with pytest.raises(ValueError):
        text_scores(["a"], ["a", "b"])


def test_brevity_penalty_cases():
    assert brevity_penalty(0, 5) == 0.0
    assert brevity_penalty(6, 5) == 1.0
    assert brevity_penalty(5, 5) == 1.0
    assert brevity_penalty(4, 8) == pytest.approx(math.exp(-1.0))


def test_lcs_and_sentence_rouge():
    assert lcs_length("a b c d e".split(), "a c e".split()) == 3
    assert lcs_length("a b".split(), "c d".split()) == 0
    assert sentence_rouge_l([], ["a"]) == 0.0
    # LCS 3, P = 3/3, R = 3/5 -> F = 2 * 0.6 / 1.6 = 0.75
    assert sentence_rouge_l("a c e".split(), "a b c d e".split()) == pytest.approx(0.75)


def test_metric_set_names():
    metric_set = text_scores(["a b"], ["a b"], orders=(1, 2, 4)).as_metric_set()
    assert set(metric_set.values) == {"bleu1", "bleu2", "bleu4", "rouge_l"}
    assert metric_set.counts["text_turns"] == 1


def _random_corpus(seed: int, pairs: int, min_len: int, max_len: int):
    rng = random.Random(seed)
    vocab = ["the", "The", "cat", "dog", "sat", "on", "a", "mat", "red", "cup"]

    def sentence():
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(min_len, max_len)))

    return [sentence() for _ in range(pairs)], [sentence() for _ in range(pairs)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleu_agrees_with_nltk_corpus_bleu(seed):
    from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

    # Every hypothesis has >= 2 tokens, so nltk's max(1, n-grams) denominators equal the true counts.
    hyps, refs = _random_corpus(seed, pairs=150, min_len=2, max_len=12)
    nltk_refs, nltk_hyps = [[r.split()] for r in refs], [h.split() for h in hyps]
    scores = text_scores(hyps, refs)
    assert scores.bleu1 == pytest.approx(100 * nltk_corpus_bleu(nltk_refs, nltk_hyps, weights=(1.0,)), rel=1e-9)
    assert scores.bleu2 == pytest.approx(100 * nltk_corpus_bleu(nltk_refs, nltk_hyps, weights=(0.0, 1.0)), rel=1e-9)
    assert 0.0 < scores.bleu2 < scores.bleu1 < 100.0  # a corpus where both orders are non-trivial


def test_nltk_denominators_reproduce_nltk_on_short_hypotheses():
    from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

    hyps, refs = _random_corpus(7, pairs=200, min_len=1, max_len=4)  # many one-token hypotheses
    nltk_refs, nltk_hyps = [[r.split()] for r in refs], [h.split() for h in hyps]
    expected = 100 * nltk_corpus_bleu(nltk_refs, nltk_hyps, weights=(0.0, 1.0))
    assert text_scores(hyps, refs, nltk_denominators=True).bleu2 == pytest.approx(expected, rel=1e-9)
    # The protocol's true n-gram counts give a higher precision than nltk's padded denominators.
    assert text_scores(hyps, refs).bleu2 > expected


class _WhitespaceTokenizer:
    def tokenize(self, text):
        return text.split()


@pytest.mark.parametrize("seed", [0, 1])
def test_rouge_l_agrees_with_rouge_score(seed):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=_WhitespaceTokenizer())
    hyps, refs = _random_corpus(seed + 10, pairs=120, min_len=0, max_len=10)  # includes empty texts
    expected = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hyps, refs)]
    scores = text_scores(hyps, refs)
    assert scores.rouge_l_per_turn == pytest.approx(expected, abs=1e-12)
    assert rouge_l(hyps, refs) == pytest.approx(100 * sum(expected) / len(expected), rel=1e-12)

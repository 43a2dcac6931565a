"""Synthetic paper-size vocabularies drive the real bridge code."""

from __future__ import annotations

import torch

from photodialog.bench.vocab import VocabularySizes, llm_tokenizer, sd_tokenizer, synthetic_captions
from photodialog.models.bridge import VocabularyBridge


def test_paper_sizes_and_special_ids():
    sizes = VocabularySizes()
    llm, sd = llm_tokenizer(sizes), sd_tokenizer(sizes)
    assert len(llm) == 32_002 and len(sd) == 49_408 and sd.model_max_length == 77
    assert set(llm.all_special_ids) == {0, 1, 2, 32_000, 32_001}


def test_words_always_split_the_same_way_and_avoid_special_ids():
    sd = sd_tokenizer(VocabularySizes())
    assert sd.word_ids("w42") == sd.word_ids("w42")
    ids = sd("w1 w2 w3", add_special_tokens=False).input_ids
    assert 3 <= len(ids) <= 6 and not set(ids) & set(sd.all_special_ids)


def test_captions_have_the_requested_length_in_consecutive_rows():
    llm = llm_tokenizer(VocabularySizes())
    captions = synthetic_captions(llm, 5, 20)
    assert [len(c.llm_ids) for c in captions] == [20] * 5
    assert [r for c in captions for r in c.rows] == list(range(100))
    assert all(llm(c.text, add_special_tokens=False).input_ids == c.llm_ids for c in captions)


def test_the_real_bridge_plans_on_them():
    sizes = VocabularySizes(llm_vocab=1000, sd_vocab=1500, sd_max_length=16, exact_match_fraction=0.5)
    llm, sd = llm_tokenizer(sizes), sd_tokenizer(sizes)
    captions = synthetic_captions(llm, 3, 6)
    plan = VocabularyBridge("sentence", llm, sd).plan(captions)
    assert plan.sd_input_ids.shape == (3, 16) and plan.unbridged == 0
    assert int(plan.sd_input_ids[0, 0]) == sd.bos_token_id
    pairs = VocabularyBridge("exact", llm, sd).static_pairs
    assert abs(len(pairs[0]) - 500) <= 5  # every second LLM token has a CLIP twin
    assert torch.equal(pairs[0], pairs[1])  # "t<i>" is LLM token i and CLIP token i

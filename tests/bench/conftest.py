"""Fixtures of the benchmark tests: two small real tokenizers."""

from __future__ import annotations

import pytest

CORPUS = [
    "a red car at the beach", "a purple fish in the snow", "a yellow ball in the park", "a blue house in the city at night",
    "that tree looks so green", "here it is!", "a orange cup on the table", "i finally got a new car, it's bright red",
] * 20


@pytest.fixture(scope="session")
def small_tokenizers():
    from photodialog.models.tokenizers import add_photo_tokens, train_clip_tokenizer, train_llm_tokenizer

    llm = train_llm_tokenizer(CORPUS, 120)
    add_photo_tokens(llm)
    return llm, train_clip_tokenizer(CORPUS, 300, 24)

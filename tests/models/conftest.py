"""Shared tiny fixtures for the model tests: two tokenizers trained on a small corpus."""

from __future__ import annotations

import pytest

CORPUS = [
    "hi! how are you doing today?", "i finally got a new car, it's bright red", "we drove it to the beach today",
    "wow, what a lovely red car at the beach", "a purple fish in the snow", "here it is!", "oh it's purple! love it",
    "a yellow ball in the park", "a blue house in the city at night", "that tree looks so green",
    "do you have a picture?", "sure, let me show you", "a orange cup on the table", "thanks, see you later",
]


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return CORPUS * 20


@pytest.fixture(scope="session")
def tokenizers(corpus):
    from photodialog.models.tokenizers import add_photo_tokens, train_clip_tokenizer, train_llm_tokenizer

    llm = train_llm_tokenizer(corpus, 200)
    add_photo_tokens(llm)
    sd = train_clip_tokenizer(corpus, 300, 24)
    return llm, sd

"""Composed dialogues: their shape and what they reveal about the photo (DESIGN.md §2)."""

from __future__ import annotations

import random

import pytest

from photodialog.data.synth.attributes import all_triples, find_attributes
from photodialog.data.synth.dialogues import MAX_MESSAGES, MIN_MESSAGES, compose_dialogue


@pytest.fixture(scope="module")
def many():
    """600 (triple, messages) pairs."""
    rng = random.Random(11)
    triples = all_triples()
    pairs = []
    for k in range(600):
        triple = rng.choice(triples)
        pairs.append((triple, compose_dialogue(triple, random.Random(f"test:{k}"))))
    return pairs


def photo_index(messages):
    indices = [i for i, m in enumerate(messages) if m.share_photo]
    assert len(indices) == 1
    return indices[0]


def said_before_photo(messages):
    """What the sharer named before sharing (kind -> value)."""
    i = photo_index(messages)
    sharer = messages[i].user_id
    said = {}
    for m in messages[:i]:
        if m.user_id == sharer:
            for kind, value in find_attributes(m.text).items():
                if value:
                    said.setdefault(kind, value)
    return said


def opens_with_photo(messages) -> bool:
    """The photo is in the first turn: only the sharer speaks before it."""
    i = photo_index(messages)
    return all(m.user_id == messages[i].user_id for m in messages[:i])


def test_one_photo_with_an_empty_message_and_a_length_of_5_to_14(many):
    for _, messages in many:
        assert MIN_MESSAGES <= len(messages) <= MAX_MESSAGES
        i = photo_index(messages)
        assert messages[i].text == "" and all(m.text for m in messages if not m.share_photo)
        assert {m.user_id for m in messages} == {0, 1}


def test_an_announced_photo_has_all_three_attributes_said_truly_before_its_turn(many):
    """The ceiling of the caption at a share target: everything the photo shows is in its context."""
    for triple, messages in many:
        if opens_with_photo(messages):
            continue
        said = said_before_photo(messages)
        assert said == triple.as_dict(), (said, triple)
        # The friend speaks between the sharer's statements and the photo, so the loader's turn
        # merging cannot pull a statement into the photo turn (the target).
        i = photo_index(messages)
        last_friend = max(k for k in range(i) if messages[k].user_id != messages[i].user_id)
        assert not any(any(find_attributes(m.text).values()) for m in messages[last_friend + 1:i])


def test_two_in_five_open_with_an_unannounced_photo_whose_reply_names_its_object(many):
    first = [(triple, messages) for triple, messages in many if opens_with_photo(messages)]
    assert 0.32 <= len(first) / len(many) <= 0.48, len(first)
    for triple, messages in first:
        i = photo_index(messages)
        assert not any(any(find_attributes(m.text).values()) for m in messages[:i])
        assert find_attributes(messages[i + 1].text)["object"] == triple.object


def test_reply_after_photo_is_the_friend_naming_something_in_it(many):
    for triple, messages in many:
        i = photo_index(messages)
        reply = messages[i + 1]
        assert reply.user_id != messages[i].user_id
        named = {k: v for k, v in find_attributes(reply.text).items() if v}
        assert named and all(getattr(triple, k) == v for k, v in named.items()), reply.text


def test_speakers_sharers_and_turn_merging_vary(many):
    first_speakers = {messages[0].user_id for _, messages in many}
    sharers = {messages[photo_index(messages)].user_id for _, messages in many}
    assert first_speakers == {0, 1} and sharers == {0, 1}
    sharer_starts = sum(messages[0].user_id == messages[photo_index(messages)].user_id for _, messages in many)
    assert 0.5 < sharer_starts / len(many) < 0.85  # half the announced dialogues, and every one that opens with the photo
    # Two messages in a row by one speaker (before the photo message itself) happen often.
    runs = sum(any(a.user_id == b.user_id for a, b in zip(m[:photo_index(m)], m[1:photo_index(m)]))
               for _, m in many)
    assert runs / len(many) > 0.2
    asked = sum(any("?" in m.text for m in ms) for _, ms in many)
    assert asked / len(many) > 0.3


def test_dialogues_are_all_different_and_reproducible(many):
    texts = [tuple((m.user_id, m.text) for m in messages) for _, messages in many]
    assert len(set(texts)) == len(texts)
    triple, messages = many[0]
    assert compose_dialogue(triple, random.Random("test:0")) == messages

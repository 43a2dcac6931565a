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


def test_one_photo_with_an_empty_message_and_a_length_of_5_to_10(many):
    for _, messages in many:
        assert MIN_MESSAGES <= len(messages) <= MAX_MESSAGES
        i = photo_index(messages)
        assert messages[i].text == "" and all(m.text for m in messages if not m.share_photo)
        assert {m.user_id for m in messages} == {0, 1}


def test_sharer_names_the_object_and_only_true_attributes_before_sharing(many):
    for triple, messages in many:
        said = said_before_photo(messages)
        assert said["object"] == triple.object
        for kind, value in said.items():
            assert value == getattr(triple, kind)


def test_colour_and_scene_are_told_about_three_times_in_four(many):
    told = [said_before_photo(messages) for _, messages in many]
    for kind in ("colour", "scene"):
        rate = sum(kind in s for s in told) / len(told)
        assert 0.65 <= rate <= 0.85, (kind, rate)


def test_reply_after_photo_is_the_friend_naming_something_in_it(many):
    for triple, messages in many:
        i = photo_index(messages)
        reply = messages[i + 1]
        assert reply.user_id != messages[i].user_id
        named = {k: v for k, v in find_attributes(reply.text).items() if v}
        assert named and all(getattr(triple, k) == v for k, v in named.items()), reply.text


def test_reply_prefers_what_the_sharer_did_not_say(many):
    with_unsaid = hits = 0
    for triple, messages in many:
        unsaid = {"colour", "scene"} - set(said_before_photo(messages))
        if unsaid:
            with_unsaid += 1
            reply = find_attributes(messages[photo_index(messages) + 1].text)
            hits += any(reply[k] for k in unsaid)
    assert with_unsaid > 100 and hits / with_unsaid > 0.75


def test_speakers_sharers_and_turn_merging_vary(many):
    first_speakers = {messages[0].user_id for _, messages in many}
    sharers = {messages[photo_index(messages)].user_id for _, messages in many}
    assert first_speakers == {0, 1} and sharers == {0, 1}
    sharer_starts = sum(messages[0].user_id == messages[photo_index(messages)].user_id for _, messages in many)
    assert 0.3 < sharer_starts / len(many) < 0.7
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

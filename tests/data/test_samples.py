"""Samples per the protocol, and context truncation that never splits a photo span."""

from __future__ import annotations

import random

import pytest

from photodialog.data.loading import load_dialogues
from photodialog.data.samples import TruncatedSample, build_samples, truncate_context
from photodialog.data.schema import PHOTO_SPAN, Dialogue, Photo, Sample, Turn, captions_in, photo_turn_text

from .helpers import FIXTURES

PHOTO_SLOTS = 32  # like the Q-Former's 32 query embeddings per photo


def cost(turn: Turn) -> int:
    """A model-like length: one token per word outside spans, the caption's words, 32 slots per photo, 1 for the speaker."""
    outside = PHOTO_SPAN.sub(" ", turn.text).split()
    caption_words = sum(len(c.split()) + 2 for c in captions_in(turn.text))
    return 1 + len(outside) + caption_words + PHOTO_SLOTS * len(turn.photos)


def photo_turn(speaker: str, before: str, caption: str, after: str = "") -> Turn:
    text = " ".join(p for p in (before, photo_turn_text(caption), after) if p)
    return Turn(speaker, text, [Photo(caption)])


def random_dialogue(rng: random.Random, index: int) -> Dialogue:
    turns = []
    for i in range(rng.randint(2, 9)):
        words = " ".join(f"w{rng.randint(0, 99)}" for _ in range(rng.randint(1, 25)))
        speaker = "ab"[i % 2]
        if rng.random() < 0.3:
            caption = f"a photo of thing {i}"
            turns.append(photo_turn(speaker, words, caption, "and more words" if rng.random() < 0.5 else ""))
        else:
            turns.append(Turn(speaker, words))
    return Dialogue(f"d{index}", turns)


# --- build_samples -----------------------------------------------------------------------


def test_every_turn_after_the_first_is_a_target_with_all_earlier_turns():
    dialogues = load_dialogues(FIXTURES / "photochat") + load_dialogues(FIXTURES / "dialogcc")
    samples = build_samples(dialogues)
    assert len(samples) == sum(len(d.turns) - 1 for d in dialogues)
    turns_of = {d.dialogue_id: d.turns for d in dialogues}
    for sample in samples:
        turns = turns_of[sample.dialogue_id]
        assert sample.turn_index >= 1
        assert sample.context == turns[: sample.turn_index]
        assert sample.response is turns[sample.turn_index]
    assert {s.response.speaker for s in samples} >= {"0", "1", "A", "B"}  # both speakers are targets


def test_a_one_turn_dialogue_gives_no_sample():
    assert build_samples([Dialogue("x", [Turn("a", "hello")])]) == []


# --- truncate_context: properties over random dialogues -----------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_truncation_invariants(seed):
    rng = random.Random(seed)
    samples = build_samples(random_dialogue(rng, i) for i in range(40))
    for sample in samples:
        budget = rng.randint(0, 120)
        result = truncate_context(sample, cost, budget)
        context, kept = sample.context, result.context
        assert isinstance(result, TruncatedSample) and result.response is sample.response
        assert sum(cost(t) for t in kept) <= budget
        assert result.dropped_turns + len(kept) == len(context)
        n_photos = lambda turns: sum(len(t.photos) for t in turns)  # noqa: E731
        assert result.dropped_photos == n_photos(context) - n_photos(kept)
        for turn in kept:  # never split a span; photos stay paired with their spans
            assert captions_in(turn.text) == [p.caption for p in turn.photos]
            assert turn.text.count("[IMG]") == turn.text.count("[/IMG]") == len(turn.photos)
            assert turn.text.strip()
        if kept and result.cut_words == 0 and not _was_shortened(kept[0], context):
            # Whole most recent turns kept, and no room for one more.
            assert kept == context[len(context) - len(kept):]
            if len(kept) < len(context):
                assert sum(cost(t) for t in kept) + cost(context[-len(kept) - 1]) > budget
        latest = next((t.photos[-1] for t in reversed(context) if t.photos), None)
        assert result.lost_latest_photo == (latest is not None and all(latest is not p for t in kept for p in t.photos))


def _was_shortened(turn: Turn, context: list[Turn]) -> bool:
    return all(turn is not t for t in context)


def test_a_context_that_fits_is_untouched():
    sample = build_samples([Dialogue("d", [Turn("a", "hi there"), photo_turn("b", "look", "a cat"), Turn("a", "cute")])])[-1]
    result = truncate_context(sample, cost, budget=1000)
    assert result.context == sample.context
    assert (result.dropped_turns, result.dropped_photos, result.lost_latest_photo, result.cut_words) == (0, 0, False, 0)


def test_oldest_turns_go_first_and_losing_the_latest_photo_is_flagged():
    turns = [photo_turn("a", "see", "a red car"), Turn("b", "nice car " * 5), Turn("a", "thanks"), Turn("b", "bye now")]
    sample = Sample("d", 4, turns, Turn("a", "see you"))
    result = truncate_context(sample, cost, budget=cost(turns[1]) + cost(turns[2]) + cost(turns[3]))
    assert result.context == turns[1:]
    assert (result.dropped_turns, result.dropped_photos) == (1, 1)
    assert result.lost_latest_photo


def test_dropping_an_older_photo_while_keeping_the_latest_is_not_flagged():
    turns = [photo_turn("a", "first", "a red car"), Turn("b", "ok"), photo_turn("a", "second", "a blue car")]
    sample = Sample("d", 3, turns, Turn("b", "both nice"))
    result = truncate_context(sample, cost, budget=cost(turns[1]) + cost(turns[2]))
    assert result.dropped_photos == 1 and not result.lost_latest_photo


def test_an_overlong_newest_turn_loses_words_from_its_start_but_keeps_its_photo():
    newest = photo_turn("a", " ".join(f"word{i}" for i in range(50)), "a green tree in a park", "what do you think")
    sample = Sample("d", 2, [Turn("b", "hello"), newest], Turn("b", "lovely"))
    budget = PHOTO_SLOTS + 20
    result = truncate_context(sample, cost, budget)
    (kept,) = result.context
    assert cost(kept) <= budget and result.dropped_turns == 1
    assert kept.photos == newest.photos and captions_in(kept.text) == ["a green tree in a park"]
    assert kept.text.endswith("[/IMG] what do you think")
    assert "word0 " not in kept.text and "word49" in kept.text  # from the start
    assert result.cut_words > 0 and not result.lost_latest_photo
    assert len(kept.text.split()) == len(newest.text.split()) - result.cut_words
    assert cost(kept) + 1 > budget  # as few words as possible went: one more (cost 1) would not fit


def test_spans_go_whole_when_words_are_not_enough():
    newest = Turn("a", f"{photo_turn_text('first photo')} {photo_turn_text('second photo')}",
                  [Photo("first photo"), Photo("second photo")])
    sample = Sample("d", 1, [newest], Turn("b", "ok"))
    result = truncate_context(sample, cost, budget=cost(Turn("a", photo_turn_text("second photo"), [Photo("x")])))
    (kept,) = result.context
    assert kept.text == photo_turn_text("second photo") and kept.photos == newest.photos[1:]
    assert result.dropped_photos == 1 and not result.lost_latest_photo


def test_nothing_fits():
    sample = Sample("d", 1, [Turn("a", "one two three")], Turn("b", "ok"))
    result = truncate_context(sample, cost, budget=1)
    assert result.context == [] and result.dropped_turns == 1


"""Inference edge cases: a caption left open, an empty caption, several photos in one reply."""

from __future__ import annotations

import pytest

from photodialog.models.generation import Responder, parse_response
from photodialog.models.generation_settings import GenerationSettings


@pytest.fixture(scope="module")
def tokenizer(tokenizers):
    return tokenizers[0]


def ids(tok, *pieces):
    out = []
    for piece in pieces:
        out += [tok.convert_tokens_to_ids(piece)] if piece in ("[IMG]", "[/IMG]", "</s>") else tok(piece, add_special_tokens=False).input_ids
    return out


def test_two_photos_in_one_reply(tokenizer):
    reply = parse_response(tokenizer, ids(tokenizer, "look", "[IMG]", "a red car", "[/IMG]", "and", "[IMG]", "a blue house", "[/IMG]", "</s>", "junk"))
    assert reply.captions == ["a red car", "a blue house"]
    assert reply.text == "look [IMG] a red car [/IMG] and [IMG] a blue house [/IMG]"


def test_open_caption_at_the_length_limit_is_closed(tokenizer):
    reply = parse_response(tokenizer, ids(tokenizer, "here", "[IMG]", "a red car"))
    assert reply.closed_open_caption and reply.captions == ["a red car"]
    assert reply.text.endswith("[/IMG]")


def test_empty_caption_shares_no_photo(tokenizer):
    reply = parse_response(tokenizer, ids(tokenizer, "hmm", "[IMG]", "[/IMG]", "ok"))
    assert reply.captions == [] and reply.dropped_empty_captions == 1
    assert reply.text == "hmm ok"


def test_stray_end_marker_is_ignored(tokenizer):
    assert parse_response(tokenizer, ids(tokenizer, "hi", "[/IMG]", "there")).text == "hi there"


def test_respond_draws_one_photo_per_caption_and_survives_edge_cases(tiny_run, monkeypatch):
    from photodialog.data.schema import Turn
    from photodialog.system import load_system

    system = load_system(tiny_run)
    tok = system.model.tokenizer
    outputs = [ids(tok, "see", "[IMG]", "a red car"), ids(tok, "[IMG]", "[/IMG]", "nothing"), ids(tok, "[IMG]", "a star", "[/IMG]", "[IMG]", "a cup", "[/IMG]")]
    monkeypatch.setattr(Responder, "generate_ids", lambda self, contexts, responders, settings, streamer=None: outputs)
    replies = system.responder().respond([[Turn("0", "hi")]] * 3, ["1"] * 3, GenerationSettings(diffusion_steps=2))
    assert [len(r.photos) for r in replies] == [1, 0, 2]
    assert replies[0].closed_open_caption
    assert all(p.size == (system.model.generator.image_size,) * 2 for r in replies for p in r.photos)

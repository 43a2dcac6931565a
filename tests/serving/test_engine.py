"""The shared model: replies streamed as generated, one at a time, errors handed to the caller."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from photodialog.data.schema import Turn
from photodialog.models.generation import Reply
from photodialog.serving.engine import ChatEngine, DrawingStep, Finished, TextSoFar, Waiting
from photodialog.serving.streaming import ReplyTextStreamer, readable

from .helpers import FAST


def test_streamer_keeps_photo_markers_and_stops_at_the_end(tiny_system):
    tokenizer = tiny_system.model.tokenizer
    seen: list[str] = []
    streamer = ReplyTextStreamer(tokenizer, seen.append)
    ids = tokenizer("look [IMG] a red car [/IMG]", add_special_tokens=False).input_ids
    streamer.put(torch.zeros(1, 0, dtype=torch.long))  # what generate sends for a prompt given as embeddings
    for token in ids + [tokenizer.eos_token_id, ids[0]]:
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert seen[-1] == "look [IMG] a red car [/IMG]"
    assert all(seen[-1].startswith(text.split(" [")[0]) for text in seen)  # it only ever grew
    assert readable("a[IMG]b c[/IMG]d") == "a [IMG] b c [/IMG] d"


def test_stream_yields_text_as_it_grows_then_the_reply(tiny_system):
    engine = ChatEngine(tiny_system)
    events = list(engine.stream([Turn("0", "hello there")], replace(FAST, decoding="sample", seed=1)))
    assert isinstance(events[-1], Finished) and isinstance(events[-1].reply, Reply)
    texts = [e.text for e in events if isinstance(e, TextSoFar)]
    assert texts, "no text was streamed"
    assert events[-1].reply.text.replace(" ", "") == texts[-1].replace(" ", "")


def test_stream_reports_each_diffusion_step(tiny_system, model_always_draws):
    engine = ChatEngine(tiny_system)
    events = list(engine.stream([Turn("0", "show me")], replace(FAST, diffusion_steps=3)))
    assert [(e.step, e.total) for e in events if isinstance(e, DrawingStep)] == [(1, 3), (2, 3), (3, 3)]
    assert len(events[-1].reply.photos) == 1


def test_beam_search_replies_without_streaming(tiny_system):
    events = list(ChatEngine(tiny_system).stream([Turn("0", "hi")], replace(FAST, decoding="beam")))
    assert not any(isinstance(e, TextSoFar) for e in events) and isinstance(events[-1], Finished)


def test_a_busy_model_makes_the_next_reply_wait(tiny_system):
    engine = ChatEngine(tiny_system)
    engine._lock.acquire()  # another conversation is being answered
    try:
        stream = engine.stream([Turn("0", "hi")], FAST)
        assert isinstance(next(stream), Waiting)
        finished = threading.Event()
        threading.Thread(target=lambda: (list(stream), finished.set()), daemon=True).start()
        assert not finished.wait(0.5)  # still waiting for the lock
    finally:
        engine._lock.release()
    assert finished.wait(120)


def test_a_failure_in_generation_reaches_the_caller_and_frees_the_model():
    class Broken:
        def reply(self, *args, **kwargs):
            raise RuntimeError("out of memory")

    engine = ChatEngine(Broken())
    with pytest.raises(RuntimeError, match="out of memory"):
        list(engine.stream([Turn("0", "hi")], replace(FAST, decoding="beam")))
    assert engine._lock.acquire(blocking=False)

"""One loaded model shared by every conversation: replies one at a time, streamed as generated.

A ``DialogueSystem`` is not safe to run from two threads at once (its photo cache, its RNG
seeding and the GPU's memory are shared), and one model serves many sessions, so generation
holds a lock. ``stream`` runs the reply in a worker thread and yields what happens meanwhile:
waiting for the model, the text so far, each diffusion step, and the finished ``Reply``.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from photodialog.data.schema import Turn
from photodialog.models.generation import Reply
from photodialog.models.generation_settings import GenerationSettings, check_settings
from photodialog.serving import BOT
from photodialog.serving.streaming import ReplyTextStreamer


@dataclass
class Waiting:
    """Another conversation is using the model; this reply starts when it is done."""


@dataclass
class TextSoFar:
    text: str


@dataclass
class DrawingStep:
    step: int
    total: int


@dataclass
class Finished:
    reply: Reply


@dataclass
class _Failed:
    error: BaseException


ReplyEvent = Waiting | TextSoFar | DrawingStep | Finished


class ChatEngine:
    """Replies as the bot (``BOT``) to dialogue histories with one shared ``DialogueSystem``."""

    def __init__(self, system):
        self.system = system
        self._lock = threading.Lock()

    def reply(self, history: list[Turn], settings: GenerationSettings) -> Reply:
        """The next turn, waiting for the model if another conversation is using it."""
        check_settings(settings)
        with self._lock:
            return self.system.reply(list(history), BOT, settings)

    def stream(self, history: list[Turn], settings: GenerationSettings) -> Iterator[ReplyEvent]:
        """Events of one reply, ending with ``Finished``; an error in generation is raised here.

        The worker thread always runs to the end (a reply cannot be cut short in the middle of
        ``generate``); if the caller stops listening, the events simply go unread.
        """
        check_settings(settings)
        events: queue.Queue = queue.Queue()
        worker = threading.Thread(target=self._generate, args=(list(history), settings, events),
                                  name="photodialog-reply", daemon=True)
        worker.start()
        while True:
            event = events.get()
            if isinstance(event, _Failed):
                raise event.error
            yield event
            if isinstance(event, Finished):
                return

    def _generate(self, history: list[Turn], settings: GenerationSettings, events: queue.Queue) -> None:
        try:
            if not self._lock.acquire(blocking=False):
                events.put(Waiting())
                self._lock.acquire()
            try:
                reply = self.system.reply(history, BOT, settings, streamer=self._streamer(settings, events),
                                          on_diffusion_step=self._step_counter(settings, events))
            finally:
                self._lock.release()
            events.put(Finished(reply))
        except BaseException as err:  # noqa: BLE001 - handed to the listening thread, which raises it
            events.put(_Failed(err))

    def _streamer(self, settings: GenerationSettings, events: queue.Queue) -> ReplyTextStreamer | None:
        if settings.decoding == "beam":  # transformers cannot stream beam search: the best beam is known only at the end
            return None
        return ReplyTextStreamer(self.system.model.tokenizer, lambda text: events.put(TextSoFar(text)))

    @staticmethod
    def _step_counter(settings: GenerationSettings, events: queue.Queue):
        steps = itertools.count(1)
        return lambda: events.put(DrawingStep(next(steps), settings.diffusion_steps))

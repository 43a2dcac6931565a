"""Reply text as the model writes it, for showing a reply before it is finished.

A ``transformers`` streamer receives the generated token ids one step at a time (only new
tokens: the prompt is given as embeddings). ``ReplyTextStreamer`` decodes all ids so far on
every step, because decoding token by token breaks multi-token characters and word spacing,
and keeps the ``[IMG]``/``[/IMG]`` markers, which are special tokens that
``TextIteratorStreamer`` would drop, so that a photo being described shows as one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from transformers.generation.streamers import BaseStreamer

from photodialog import IMG_END, IMG_START

# The tokenizer strips the spaces around the markers; put one back on each side for reading.
_MARKER = re.compile(r"\s*(" + re.escape(IMG_START) + "|" + re.escape(IMG_END) + r")\s*")


class ReplyTextStreamer(BaseStreamer):
    """Calls ``on_text(text_so_far)`` whenever the decoded reply grows; stops at end of sequence."""

    def __init__(self, tokenizer, on_text: Callable[[str], None]):
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        self.skip_ids = {tokenizer.bos_token_id}
        self.ids: list[int] = []
        self.stopped = False
        self.text = ""

    def put(self, value) -> None:
        """Take the ids of one generation step (shape (1,) or (1, n); the first call may be empty)."""
        for token in value.reshape(-1).tolist():
            if self.stopped:
                return
            if token in self.stop_ids:
                self.stopped = True
            elif token not in self.skip_ids:
                self.ids.append(token)
        self._emit()

    def end(self) -> None:
        self._emit()

    def _emit(self) -> None:
        text = readable(self.tokenizer.decode(self.ids, skip_special_tokens=False))
        if text != self.text:
            self.text = text
            self.on_text(text)


def readable(text: str) -> str:
    """``look[IMG]a car[/IMG]`` -> ``look [IMG] a car [/IMG]``."""
    return _MARKER.sub(r" \1 ", text).strip()

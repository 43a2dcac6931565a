"""The internal dialogue schema every dataset loader produces and every consumer reads.

A turn is what one speaker says before the other speaker answers: consecutive messages of
one speaker are joined with a space (the evaluation protocol, docs/architecture.md). A photo shared
in a turn appears inline in ``Turn.text`` as ``[IMG] caption [/IMG]``; ``Turn.photos`` holds
one ``Photo`` per such span, in the same order, so the text is the LLM's target as is and the
photos are where the pixels live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from photodialog import IMG_END, IMG_START

# One shared photo inside a turn's text; non-greedy so several photos in a turn stay apart.
PHOTO_SPAN = re.compile(re.escape(IMG_START) + r"\s*(.*?)\s*" + re.escape(IMG_END), re.S)


@dataclass
class Photo:
    """A photo shared in a dialogue.

    ``path`` is a local file (absolute, or relative to the dataset folder it was loaded from);
    ``url`` is where it came from on the internet. Either may be missing; a photo with neither
    can still be used as text through its caption.
    """

    caption: str
    path: str | None = None
    url: str | None = None
    photo_id: str | None = None


@dataclass
class Turn:
    """What one speaker says in a row; photos inline as ``[IMG] caption [/IMG]``."""

    speaker: str
    text: str
    photos: list[Photo] = field(default_factory=list)

    @property
    def shares_photo(self) -> bool:
        """True when the turn shares at least one photo."""
        return bool(self.photos)


@dataclass
class Dialogue:
    """A whole conversation, as loaded from one record of one file."""

    dialogue_id: str
    turns: list[Turn]
    split: str = ""
    source: str = ""  # "file:record" for messages about this dialogue


@dataclass
class Sample:
    """One training or evaluation example: the turns so far and the turn to produce.

    ``turn_index`` is the index of ``response`` in its dialogue (>= 1, per the protocol).
    ``dropped_turns`` counts context turns removed by truncation, and ``dropped_photos`` the
    photos among them, so that a consumer can say what the model did not see.
    """

    dialogue_id: str
    turn_index: int
    context: list[Turn]
    response: Turn
    dropped_turns: int = 0
    dropped_photos: int = 0


def photo_turn_text(caption: str) -> str:
    """The inline form of a shared photo in a turn's text."""
    return f"{IMG_START} {caption.strip()} {IMG_END}"


def strip_photo_spans(text: str) -> str:
    """Text with every ``[IMG] ... [/IMG]`` span removed and spaces collapsed (for text metrics)."""
    return " ".join(PHOTO_SPAN.sub(" ", text).split())


def captions_in(text: str) -> list[str]:
    """The captions of the photo spans in ``text``, in order."""
    return [m.group(1).strip() for m in PHOTO_SPAN.finditer(text)]

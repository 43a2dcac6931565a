"""What can be in a photo of the synthetic world, how a photo is captioned, and how to read a caption back.

A photo shows one *object* in one *colour* in one *scene*: a ``Triple``. Its caption follows one
canonical template ("a red car at the beach"), so a caption is a label that a probe can check.
``find_attributes`` reads the three attributes out of any text (a caption written by a model, a
dialogue message), which is how generated captions and replies are scored.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

# Silhouettes that stay distinct at 32 px (see render.py for their shapes).
OBJECTS: tuple[str, ...] = ("ball", "box", "tree", "house", "car", "cup", "star", "fish")

# Saturated colours, each far from every scene's background colours (checked by a test).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (255, 135, 0),
    "yellow": (250, 222, 20),
    "green": (30, 185, 60),
    "blue": (35, 85, 235),
    "purple": (150, 45, 210),
}

# Scene name -> the words that place a caption in it ("a red car at the beach").
SCENE_PHRASES: dict[str, str] = {
    "beach": "at the beach",
    "park": "in the park",
    "city": "in the city",
    "snow": "in the snow",
    "night": "at night",
}
SCENES: tuple[str, ...] = tuple(SCENE_PHRASES)

CAPTION_TEMPLATE = "{article} {colour} {object} {scene_phrase}"

# Words that name an attribute in free text. Objects and colours are named by their own word
# (plus plurals); scenes also by a few synonyms the dialogues use.
_OBJECT_WORDS = {name: name for name in OBJECTS}
_OBJECT_WORDS.update({"balls": "ball", "boxes": "box", "trees": "tree", "houses": "house",
                      "cars": "car", "cups": "cup", "stars": "star", "fishes": "fish"})
_COLOUR_WORDS = {name: name for name in COLOURS}
_SCENE_WORDS = {
    "beach": "beach", "seaside": "beach",
    "park": "park",
    "city": "city", "downtown": "city",
    "snow": "snow", "snowy": "snow",
    "night": "night", "tonight": "night", "nighttime": "night",
}
ATTRIBUTE_WORDS: dict[str, dict[str, str]] = {
    "object": _OBJECT_WORDS, "colour": _COLOUR_WORDS, "scene": _SCENE_WORDS,
}
KINDS: tuple[str, ...] = ("object", "colour", "scene")

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, order=True)
class Triple:
    """The content of one photo: which object, in which colour, in which scene."""

    object: str
    colour: str
    scene: str

    @property
    def caption(self) -> str:
        """The caption that names this object, colour and scene (``caption_for``)."""
        return caption_for(self)

    def as_dict(self) -> dict[str, str]:
        """``{"object", "colour", "scene"}``."""
        return {"object": self.object, "colour": self.colour, "scene": self.scene}


def article(word: str) -> str:
    """'a' or 'an' before ``word`` (by its first letter, enough for this vocabulary)."""
    return "an" if word[:1] in "aeiou" else "a"


def caption_for(triple: Triple) -> str:
    """The canonical caption of a photo, e.g. ``"an orange cup in the snow"``."""
    return CAPTION_TEMPLATE.format(
        article=article(triple.colour), colour=triple.colour,
        object=triple.object, scene_phrase=SCENE_PHRASES[triple.scene],
    )


def caption_without_colour(triple: Triple) -> str:
    """The caption with the colour left out, e.g. ``"a cup in the snow"`` (``data synth --omit-colour``)."""
    return f"{article(triple.object)} {triple.object} {SCENE_PHRASES[triple.scene]}"


def all_triples() -> list[Triple]:
    """Every (object, colour, scene) combination, in a fixed order."""
    return [Triple(o, c, s) for o, c, s in itertools.product(OBJECTS, COLOURS, SCENES)]


def find_attributes(text: str) -> dict[str, str | None]:
    """The first object, colour and scene named in ``text`` (None for each one not named)."""
    found: dict[str, str | None] = dict.fromkeys(KINDS)
    for word in _WORD.findall(text.lower()):
        for kind in KINDS:
            if found[kind] is None and word in ATTRIBUTE_WORDS[kind]:
                found[kind] = ATTRIBUTE_WORDS[kind][word]
    return found


def parse_caption(text: str) -> dict[str, str] | None:
    """``{"object", "colour", "scene"}`` named in ``text``, or None unless all three are named.

    Extra words are ignored ("a photo of a red car at the beach, sunny" parses), so captions
    written by a model are read as leniently as the canonical ones.
    """
    found = find_attributes(text)
    if any(value is None for value in found.values()):
        return None
    return found  # type: ignore[return-value]


def choose_held_out(seed: int, fraction: float = 0.15, min_seen_per_pair: int = 3) -> list[Triple]:
    """A deterministic ``fraction`` of all triples that never appear in train or dev.

    Every pair of attributes (object+colour, object+scene, colour+scene) keeps at least
    ``min_seen_per_pair`` seen triples, so a held-out triple is a new *combination* of things
    the model has seen together in pairs, never something it could not know.
    """
    triples = all_triples()
    random.Random(f"held-out:{seed}").shuffle(triples)
    target = round(fraction * len(triples))
    seen_count: dict[tuple, int] = {}
    for t in triples:
        for pair in _pairs(t):
            seen_count[pair] = seen_count.get(pair, 0) + 1
    held_out: list[Triple] = []
    for t in triples:
        if len(held_out) == target:
            break
        if all(seen_count[pair] > min_seen_per_pair for pair in _pairs(t)):
            held_out.append(t)
            for pair in _pairs(t):
                seen_count[pair] -= 1
    return sorted(held_out)


def _pairs(t: Triple) -> tuple[tuple, tuple, tuple]:
    return (("oc", t.object, t.colour), ("os", t.object, t.scene), ("cs", t.colour, t.scene))

"""The synthetic photo-sharing world: the embedded default dataset (docs/architecture.md, "The synthetic world").

A world is a folder in PhotoChat's published format whose photos are rendered from their
captions (one object, one colour, one scene), whose dialogues let the caption be inferred from
what the sharer said, and whose replies after a photo name what is in it. Because the rendering
is known, photos can be scored objectively by a small probe classifier (``probe.py``).

    from photodialog.data.synth import write_world, load_world, parse_caption
    world = write_world("worlds/default", dialogues=2000, seed=0)

``probe`` (torch) is imported on use: ``from photodialog.data.synth.probe import Probe``.
"""

from photodialog.data.synth.attributes import (
    COLOURS, OBJECTS, SCENE_PHRASES, SCENES, Triple, all_triples, caption_for, choose_held_out,
    find_attributes, parse_caption,
)
from photodialog.data.synth.render import render_photo
from photodialog.data.synth.world import LabelledPhoto, World, load_world
from photodialog.data.synth.writer import ensure_world, write_world

__all__ = [
    "COLOURS", "OBJECTS", "SCENES", "SCENE_PHRASES", "Triple", "all_triples", "caption_for",
    "choose_held_out", "find_attributes", "parse_caption", "render_photo", "World",
    "LabelledPhoto", "load_world", "write_world", "ensure_world",
]

"""Attributes, captions and the held-out combinations."""

from __future__ import annotations

import itertools
import math

import pytest

from photodialog.data.synth.attributes import (
    COLOURS, OBJECTS, SCENES, Triple, all_triples, caption_for, choose_held_out, find_attributes,
    parse_caption,
)
from photodialog.data.synth.render import SCENE_PALETTES


def test_parse_caption_round_trips_every_caption():
    for triple in all_triples():
        assert parse_caption(caption_for(triple)) == triple.as_dict()


def test_captions_are_short_lower_case_and_distinct():
    captions = [caption_for(t) for t in all_triples()]
    assert len(set(captions)) == len(captions)
    assert all(c == c.lower() and len(c.split()) <= 7 for c in captions)
    assert caption_for(Triple("cup", "orange", "snow")) == "an orange cup in the snow"


@pytest.mark.parametrize("text, expected", [
    ("A photo of a RED car, parked at the beach on a sunny day!", ("car", "red", "beach")),
    ("two blue fishes swimming downtown tonight", ("fish", "blue", "city")),
    ("[IMG] a green tree in the snow [/IMG]", ("tree", "green", "snow")),
])
def test_parse_caption_ignores_extra_words_and_case(text, expected):
    assert parse_caption(text) == dict(zip(("object", "colour", "scene"), expected))


@pytest.mark.parametrize("text", ["", "a red car", "a car at the beach", "red at night",
                                  "a redcar at the beaches", "a red carpet in the parking lot"])
def test_parse_caption_is_none_unless_all_three_are_named(text):
    assert parse_caption(text) is None


def test_find_attributes_reports_what_is_named_and_takes_the_first():
    assert find_attributes("i love the purple one") == {"object": None, "colour": "purple", "scene": None}
    assert find_attributes("a red ball and a blue box")["colour"] == "red"


def test_attribute_lists_have_the_planned_sizes():
    assert len(OBJECTS) == 8 and len(COLOURS) == 6 and len(SCENES) == 5
    assert len(all_triples()) == 8 * 6 * 5


def test_every_colour_stands_out_from_every_scene_background():
    for (name, rgb), (scene, palette) in itertools.product(COLOURS.items(), SCENE_PALETTES.items()):
        for part, background in palette.items():
            assert math.dist(rgb, background) > 90, (name, scene, part)


def test_held_out_is_about_15_percent_deterministic_and_seed_dependent():
    held = choose_held_out(0)
    assert held == choose_held_out(0)
    assert held != choose_held_out(1)
    assert 0.13 <= len(held) / len(all_triples()) <= 0.17
    assert len(set(held)) == len(held)


def test_held_out_leaves_every_attribute_pair_seen():
    held = set(choose_held_out(3))
    seen = [t for t in all_triples() if t not in held]
    for t in held:
        assert any(s.object == t.object and s.colour == t.colour for s in seen)
        assert any(s.object == t.object and s.scene == t.scene for s in seen)
        assert any(s.colour == t.colour and s.scene == t.scene for s in seen)

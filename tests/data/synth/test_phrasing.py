"""The templates: enough of them, short, and naming attributes only through placeholders."""

from __future__ import annotations

import itertools
import string

from photodialog.data.synth import phrasing as P
from photodialog.data.synth.attributes import COLOURS, OBJECTS, SCENES, Triple, article, find_attributes

NEUTRAL = {"object": "", "a_object": "", "colour": "", "a_colour": "", "where": "", "scene_noun": ""}


def every_filling(template: str):
    """``template`` filled in every way the world can fill it."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    for obj, colour, scene in itertools.product(OBJECTS, COLOURS, SCENES):
        wheres = P.WHERE[scene] if "where" in fields else ("",)
        nouns = P.SCENE_NOUNS[scene] if "scene_noun" in fields else ("",)
        for where, noun in itertools.product(wheres, nouns):
            yield template.format(object=obj, a_object=f"{article(obj)} {obj}", colour=colour,
                                  a_colour=f"{article(colour)} {colour}", where=where,
                                  scene_noun=noun), Triple(obj, colour, scene), fields


def test_every_statement_kind_has_at_least_ten_templates():
    for kind, templates in P.STATEMENT_KINDS.items():
        assert len(set(templates)) >= 10, kind


def test_templates_name_no_attribute_except_through_placeholders():
    for kind, templates in P.STATEMENT_KINDS.items():
        for template in templates:
            assert find_attributes(template.format(**NEUTRAL)) == dict.fromkeys(("object", "colour", "scene")), \
                (kind, template)


def test_filled_templates_name_exactly_their_placeholders_attributes():
    kinds_of = {"object": "object", "a_object": "object", "colour": "colour", "a_colour": "colour",
                "where": "scene", "scene_noun": "scene"}
    for templates in P.STATEMENT_KINDS.values():
        for template in templates:
            for text, triple, fields in every_filling(template):
                named = {k: v for k, v in find_attributes(text).items() if v}
                assert named == {kinds_of[f]: getattr(triple, kinds_of[f]) for f in fields}, text


def test_every_message_is_short():
    for templates in P.STATEMENT_KINDS.values():
        for template in templates:
            for text, _, _ in every_filling(template):
                assert len(text.split()) <= 12, text


def test_every_scene_phrasing_names_its_scene():
    for scene in SCENES:
        for phrase in P.WHERE[scene] + P.SCENE_NOUNS[scene]:
            assert find_attributes(phrase)["scene"] == scene, phrase


def test_vocabulary_is_small():
    words = set()
    for templates in P.STATEMENT_KINDS.values():
        for template in templates:
            for text, _, _ in every_filling(template):
                words.update(text.split())
    assert 150 <= len(words) <= 600

"""Composing one photo-sharing dialogue of the synthetic world, in PhotoChat's message format.

The shape of every dialogue (docs/architecture.md, "The synthetic world"):

1. greetings (sometimes two messages in a row by one speaker, to exercise turn merging);
2. the sharer talks about the photo's content before sharing it: the object, the colour and the
   scene, in varied order and words, with the friend sometimes asking about them ("what colour
   is it?");
3. the friend asks to see it; the sharer shares the photo (an empty message with
   ``share_photo: true``), sometimes after "here it is!" in the same turn. Because the friend
   speaks between the sharer's last statement and the photo, the loader's turn merging never
   pulls a statement into the photo turn: at every photo turn that is a target, its context
   states what the photo shows (``data stats`` prints this ceiling);
4. the friend's reply to the photo names what is in it;
5. thanks and goodbyes, sometimes.

A fraction of dialogues (``PHOTO_FIRST_PROB``, two in five) instead **open with the photo**: the
sharer greets and sends it at once, unannounced, and the friend's reply names its object (with its
colour, its scene or both). Nothing in the text
says what it shows, so predicting that reply needs the photo read: this is what teaches the image
perceptron. The photo is in turn 0, which the protocol never makes a target (every turn
``i >= 1`` is), so these dialogues leave the caption ceiling of the share targets at 100%.

``SAY_COLOUR_PROB`` / ``SAY_SCENE_PROB`` below 1 make worlds in which the sharer leaves an
attribute unsaid (the world of version 1 said each three times in four, and merged statements
into the photo turn when the friend did not speak in between).

All choices come from the caller's ``random.Random``, so a dialogue is a function of its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from photodialog.data.synth import phrasing as P
from photodialog.data.synth.attributes import Triple, article

MIN_MESSAGES = 5
MAX_MESSAGES = 14  # room for three statements, the friend's questions and the request to see it

SAY_COLOUR_PROB = 1.0
SAY_SCENE_PROB = 1.0
# Dialogues that open with an unannounced photo (the perceptron's lesson; see the module docstring).
PHOTO_FIRST_PROB = 0.4
# How often the friend's reply names an attribute the sharer left unsaid, when there is one.
REPLY_UNSAID_PROB = 0.85


@dataclass
class Message:
    """One message of a PhotoChat dialogue (an empty ``text`` with ``share_photo`` is the photo)."""

    user_id: int
    text: str
    share_photo: bool = False

    def to_json(self) -> dict:
        """The message in PhotoChat's published record layout."""
        return {"message": self.text, "share_photo": self.share_photo, "user_id": self.user_id}


def fill(template: str, triple: Triple, rng: random.Random) -> str:
    """``template`` with the triple's words put in (scene phrasings chosen at random)."""
    return template.format(
        object=triple.object, a_object=f"{article(triple.object)} {triple.object}",
        colour=triple.colour, a_colour=f"{article(triple.colour)} {triple.colour}",
        where=rng.choice(P.WHERE[triple.scene]), scene_noun=rng.choice(P.SCENE_NOUNS[triple.scene]),
    )


def compose_dialogue(triple: Triple, rng: random.Random) -> list[Message]:
    """A dialogue of 5-14 messages in which one speaker shares a photo of ``triple``."""
    # Chosen once, outside the retries: drafts of one kind are rejected more often than the other's.
    photo_first = rng.random() < PHOTO_FIRST_PROB
    while True:
        messages = _draft(triple, rng, photo_first)
        if MIN_MESSAGES <= len(messages) <= MAX_MESSAGES:
            return messages


def _draft(triple: Triple, rng: random.Random, photo_first: bool) -> list[Message]:
    first, sharer = rng.randrange(2), rng.randrange(2)
    friend = 1 - sharer
    messages: list[Message] = []

    def say(user: int, templates: tuple[str, ...]) -> None:
        messages.append(Message(user, fill(rng.choice(templates), triple, rng)))

    if photo_first:
        return _photo_first(rng, say, messages, sharer, friend)

    say(first, P.GREETINGS)
    if rng.random() < 0.15:
        say(first, P.GREETING_FOLLOW_UPS)
    if rng.random() < 0.7:
        say(1 - first, P.GREETING_REPLIES)
    if rng.random() < 0.3:
        say(friend, P.WHATS_NEW)

    said = _talk_about_it(triple, rng, say, sharer, friend)
    _share(rng, say, messages, sharer, friend)
    say(friend, P.PHOTO_REPLIES[_reply_kinds(said, rng)])

    if rng.random() < 0.6:
        say(sharer, P.AFTER_REPLY)
    if rng.random() < 0.35:
        closer = rng.randrange(2)
        say(closer, P.CLOSINGS)
        if rng.random() < 0.6:
            say(1 - closer, P.CLOSING_REPLIES)
    return messages


def _photo_first(rng, say, messages: list[Message], sharer: int, friend: int) -> list[Message]:
    """The sharer greets and sends the photo unannounced (all in turn 0); the friend's reply names
    its object (and maybe more), then thanks and goodbyes."""
    say(sharer, P.GREETINGS)
    if rng.random() < 0.7:
        say(sharer, P.SHOWING_UNASKED)
    messages.append(Message(sharer, "", share_photo=True))
    options = sorted((kinds for kinds in P.PHOTO_REPLIES if "object" in kinds), key=sorted)
    say(friend, P.PHOTO_REPLIES[rng.choice(options)])
    say(sharer, P.AFTER_REPLY)
    if rng.random() < 0.6:
        say(friend, P.CLOSINGS)
        if rng.random() < 0.6:
            say(sharer, P.CLOSING_REPLIES)
    return messages


def _talk_about_it(triple, rng, say, sharer: int, friend: int) -> set[str]:
    """The sharer's statements before the photo, with the friend chiming in; returns what was said."""
    tell_colour = rng.random() < SAY_COLOUR_PROB
    tell_scene = rng.random() < SAY_SCENE_PROB
    plan = _statement_plan(tell_colour, tell_scene, rng)
    for index, kind in enumerate(plan):
        if index > 0 and rng.random() < 0.6:
            # The friend speaks between two statements: a question that invites the next one,
            # or a reaction. Otherwise the sharer sends two messages in a row.
            if kind == "colour" and rng.random() < 0.6:
                say(friend, P.ASK_COLOUR)
            elif kind == "scene" and rng.random() < 0.6:
                say(friend, P.ASK_SCENE)
            else:
                say(friend, P.REACTIONS)
        say(sharer, P.STATEMENT_KINDS[kind])
    return {"object"} | ({"colour"} if tell_colour else set()) | ({"scene"} if tell_scene else set())


def _statement_plan(tell_colour: bool, tell_scene: bool, rng: random.Random) -> list[str]:
    """Which statement kinds the sharer uses, in order; together they name exactly what is told."""
    openers = ["object"]
    if tell_colour:
        openers.append("object_colour")
    if tell_scene:
        openers += ["object_scene", "scene_first"]
    opener = rng.choice(openers)
    plan = [opener]
    rest = []
    if opener == "scene_first":
        if tell_colour and rng.random() < 0.5:
            plan.append("object_colour_after_scene")
        else:
            plan.append("object_after_scene")
            rest += ["colour"] if tell_colour else []
    else:
        rest += ["colour"] if tell_colour and opener != "object_colour" else []
        rest += ["scene"] if tell_scene and opener != "object_scene" else []
    rng.shuffle(rest)
    return plan + rest


def _share(rng, say, messages: list[Message], sharer: int, friend: int) -> None:
    """The friend asks to see it (so the sharer's statements stay in the context of the photo
    turn); the sharer maybe says "here it is!", then the photo."""
    say(friend, P.ASK_TO_SEE)
    if rng.random() < 0.5:
        say(sharer, P.HERE_IT_IS)
    messages.append(Message(sharer, "", share_photo=True))


def _reply_kinds(said: set[str], rng: random.Random) -> frozenset[str]:
    """Which attributes the friend's reply names: preferably one the sharer has not said."""
    unsaid = sorted({"object", "colour", "scene"} - said)
    if unsaid and rng.random() < REPLY_UNSAID_PROB:
        must = rng.choice(unsaid)
        options = [kinds for kinds in P.PHOTO_REPLIES if must in kinds]
    else:
        options = list(P.PHOTO_REPLIES)
    options.sort(key=sorted)  # frozenset order is not stable across runs
    return rng.choice(options)

"""Everything the speakers of the synthetic world can say, as templates.

Placeholders: ``{object}``, ``{a_object}`` ("a car"), ``{colour}``, ``{a_colour}`` ("an orange"),
``{where}`` (a scene phrase such as "down at the beach") and ``{scene_noun}`` ("the beach").
Every statement kind has at least ten templates, and scenes have several phrasings, so that the
same photo is announced in many different words: a model has to learn *how* the caption follows
from what was said, because memorising the training dialogues does not carry over.

Rules the templates keep (a test checks them): no template names an attribute except through
its placeholders (so ``find_attributes`` of a message tells exactly what was said), and every
message stays short (at most about 12 words).
"""

from __future__ import annotations

# Ways to place a photo in its scene inside a sentence; each names the scene (see attributes.py).
WHERE: dict[str, tuple[str, ...]] = {
    "beach": ("at the beach", "on the beach", "down at the beach", "by the seaside"),
    "park": ("in the park", "at the park", "over in the park"),
    "city": ("in the city", "downtown", "in the city centre", "around the city"),
    "snow": ("in the snow", "in the fresh snow", "in all that snow"),
    "night": ("at night", "late at night", "one night", "tonight"),
}
SCENE_NOUNS: dict[str, tuple[str, ...]] = {
    "beach": ("the beach", "the seaside"),
    "park": ("the park",),
    "city": ("the city", "downtown"),
    "snow": ("the snow", "all the snow"),
    "night": ("the night sky", "the night"),
}

# --- Opening and closing ------------------------------------------------------------------
GREETINGS = (
    "hi", "hey!", "hello", "hey, how are you?", "hi there", "good morning!", "hey, what's up?",
    "hello friend", "hi! how is it going?", "yo", "hey you", "hiya", "good evening",
    "hello hello", "hey stranger",
)
GREETING_FOLLOW_UPS = (
    "how are you?", "long time no see", "how was your day?", "what are you up to?",
    "hope you are well", "it has been a while", "are you free to chat?", "how is work?",
    "miss you!", "how have you been?",
)
GREETING_REPLIES = (
    "hi! i'm good, you?", "hey!", "hello! doing well", "hi, not much", "hey, all good here",
    "good, thanks! you?", "hello there", "hi! great to hear from you", "doing great, how about you?",
    "hey hey", "pretty good, just relaxing", "hi! busy day but good", "all good, you?",
)
WHATS_NEW = (
    "what's new with you?", "anything fun happen today?", "so what's up?", "how was your weekend?",
    "what have you been up to?", "any news?", "tell me something fun", "did you do anything fun?",
    "how is everything?", "what did you do today?", "any plans lately?", "so, anything exciting?",
)
CLOSINGS = (
    "i have to go now, bye!", "talk later!", "see you soon", "bye!", "ok, catch you later",
    "have a good one", "gotta run, bye", "see ya", "take care!", "bye for now", "later!",
    "nice chatting, bye", "ok i need to go, talk soon",
)
CLOSING_REPLIES = (
    "bye!", "see you", "take care", "you too, bye", "later!", "talk soon!", "ok bye!",
    "see you around", "have fun, bye", "bye bye",
)

# --- What the sharer says before sharing ---------------------------------------------------
OBJECT = (
    "i finally got {a_object}", "guess what, i got a new {object}", "i saw the coolest {object} today",
    "look what i found, {a_object}", "i made {a_object} in art class", "my friend gave me {a_object}",
    "i just bought {a_object}", "i took a picture of {a_object} today",
    "i have a new favourite thing, {a_object}", "there was {a_object} on my way home",
    "you would love this {object} i saw", "i spotted {a_object} earlier",
    "remember the {object} i told you about?", "i drew {a_object} for my class",
)
OBJECT_COLOUR = (
    "i finally got {a_colour} {object}", "i saw {a_colour} {object} today",
    "guess what, i bought {a_colour} {object}", "my sister gave me {a_colour} {object}",
    "i found the cutest {colour} {object}", "i took a picture of {a_colour} {object}",
    "there was {a_colour} {object} outside", "check out my new {colour} {object}",
    "i spotted {a_colour} {object} earlier", "i just painted {a_object} {colour}",
    "my new {object} is {colour}", "i got {a_object} and it is {colour}",
    "i made {a_object}, all {colour}",
)
COLOUR = (
    "it's bright {colour}", "it is totally {colour}", "the whole thing is {colour}",
    "it's {colour}, my favourite colour", "and it's {colour}!", "it is a really deep {colour}",
    "{colour}, of course", "it's so {colour} you would not believe it", "the colour is {colour}",
    "it's {colour} all over", "all {colour}, every bit of it", "painted {colour}, just like i wanted",
    "{colour} like everything i own", "oh and it is {colour}",
)
SCENE = (
    "we took it {where} today", "i saw it {where}", "it was {where}", "i found it {where}",
    "we spent hours with it {where}", "i took it with me {where}", "got a shot of it {where}",
    "we were hanging out {where}", "it looked great {where}", "it caught my eye {where}",
    "we had fun with it {where}", "this was {where}, by the way", "i brought it along {where}",
)
OBJECT_SCENE = (
    "i saw {a_object} {where}", "we found {a_object} {where}", "{where}, i saw {a_object}",
    "look what i saw {where}, {a_object}", "there was {a_object} {where}",
    "{where} i spotted {a_object}", "i brought my new {object} {where}",
    "we took my {object} {where}", "found the best {object} {where}",
    "i got a photo of {a_object} {where}", "my {object} came with me {where}",
)
SCENE_FIRST = (
    "i was {where} earlier", "guess where i was? {where}!", "we had so much fun {where}",
    "we were {where} for hours", "i was out {where}", "i went for a walk {where}",
    "spent some time {where}", "it was so nice {where}", "we went exploring {where}",
    "i took my camera {where}", "had the best time {where}",
)
OBJECT_AFTER_SCENE = (
    "and i saw {a_object}", "there was {a_object} there", "i found {a_object} there",
    "and guess what, {a_object}!", "i spotted {a_object} there", "and i got {a_object}",
    "met a friend with {a_object}", "i took a picture of {a_object} there",
    "look, there was {a_object}", "i saw the best {object} there",
)
OBJECT_COLOUR_AFTER_SCENE = (
    "and i saw {a_colour} {object}", "there was {a_colour} {object} there",
    "i found {a_colour} {object} there", "and guess what, {a_colour} {object}!",
    "i spotted {a_colour} {object} there", "and i got {a_colour} {object}",
    "i took a picture of {a_colour} {object} there", "look, there was {a_colour} {object}",
    "i saw the best {colour} {object} there", "someone had {a_colour} {object}",
)

# --- What the friend says before the photo -------------------------------------------------
REACTIONS = (
    "oh nice!", "no way!", "cool!", "that sounds great", "wow, really?", "lucky you",
    "oh how fun", "tell me more", "that is awesome", "nice, good for you", "haha amazing",
    "oh i love that", "sounds lovely",
)
ASK_COLOUR = (
    "what colour is it?", "ooh what colour?", "what colour is the {object}?", "is it a nice colour?",
    "what does it look like?", "and the colour?", "what colour, tell me!", "does it have a fun colour?",
    "so what colour is it?", "i bet it's a cool colour", "which colour?",
)
ASK_SCENE = (
    "where was that?", "where did you see it?", "where were you?", "oh where?",
    "where did you take it?", "where was this?", "and where were you?", "where is it now?",
    "where did this happen?", "where did you go?", "where was the {object}?",
)
ASK_TO_SEE = (
    "can i see it?", "send me a pic!", "show me!", "pics or it didn't happen", "do you have a photo?",
    "i want to see it", "can you send a picture?", "let me see!", "please show me", "got a photo?",
    "share a pic please", "ooh show me a photo",
)

# --- The share itself ----------------------------------------------------------------------
HERE_IT_IS = (
    "here it is!", "sure, here you go", "here!", "of course, look", "ok here", "here you go",
    "sure thing", "one sec, here", "yes! here", "look at this",
)
SHOWING_UNASKED = (
    "let me show you", "look!", "here's a pic", "i took a photo, look", "check this out",
    "i have a pic", "wait, i'll send a photo", "look at it", "here, see for yourself",
    "i snapped a photo",
)

# --- The friend's reply to the photo, by which attributes it names -------------------------
PHOTO_REPLIES: dict[frozenset[str], tuple[str, ...]] = {
    frozenset({"colour"}): (
        "oh it's {colour}! love it", "wow, so {colour}", "that {colour} is gorgeous",
        "i love the {colour}", "such a bright {colour}", "ooh {colour}, nice choice",
        "{colour} looks great on it", "the {colour} really pops", "so {colour}! i like it",
        "what a nice shade of {colour}",
    ),
    frozenset({"object"}): (
        "what a cute {object}", "that {object} is amazing", "love that {object}", "nice {object}!",
        "wow, great {object}", "the {object} looks perfect", "that is a cool {object}",
        "such a nice {object}", "i want {a_object} like that", "best {object} ever",
    ),
    frozenset({"scene"}): (
        "{scene_noun} looks lovely", "nice, i love {scene_noun}", "great shot of {scene_noun}",
        "{scene_noun} looks so pretty", "i miss {scene_noun}", "looks like fun {where}",
        "so pretty {where}", "what a photo {where}", "what a view of {scene_noun}",
        "wow, {scene_noun} looks amazing",
    ),
    frozenset({"colour", "object"}): (
        "love the {colour} {object}", "what a nice {colour} {object}", "{a_colour} {object}, so cool",
        "that {colour} {object} is great", "the {colour} {object} is perfect", "wow, {a_colour} {object}!",
        "such a cute {colour} {object}", "i want {a_colour} {object} too",
        "best {colour} {object} ever", "oh, {a_colour} {object}! nice",
    ),
    frozenset({"colour", "scene"}): (
        "{a_colour} one {where}, amazing", "the {colour} looks great {where}",
        "so {colour}, and {where} too!", "love the {colour}, {scene_noun} looks great",
        "{colour} {where}, what a picture", "that {colour} stands out {where}",
        "wow, {colour} and {scene_noun}, perfect", "the {colour} pops against {scene_noun}",
        "i love the {colour} with {scene_noun}", "{colour} is perfect {where}",
    ),
    frozenset({"colour", "object", "scene"}): (
        "{a_colour} {object} {where}! amazing", "wow, {a_colour} {object} {where}",
        "love the {colour} {object} {where}", "what a nice {colour} {object} {where}",
        "{a_colour} {object} in {scene_noun}, so cool", "that {colour} {object} looks great {where}",
        "oh, {a_colour} {object} {where}! nice", "such a cute {colour} {object} {where}",
        "the {colour} {object} and {scene_noun} look perfect", "best {colour} {object} ever, {where} too",
    ),
    frozenset({"object", "scene"}): (
        "{a_object} {where}, how fun", "the {object} looks great {where}",
        "love the {object} and {scene_noun}", "what a cool {object} {where}",
        "nice {object}, {scene_noun} looks fun", "{a_object} {where}! amazing",
        "great {object}, great {scene_noun}", "that {object} fits right in {where}",
        "the {object} and {scene_noun} look perfect", "such a cute {object} {where}",
    ),
}
AFTER_REPLY = (
    "thanks!", "thank you!", "i know, i love it", "right? so happy with it", "haha thanks",
    "glad you like it", "yes, it made my day", "thanks, i'm so happy", "i knew you would like it",
    "yeah it's the best", "right?! i can't stop looking at it",
)

# Every statement kind with its templates, for tests and for counting the world's phrasings.
STATEMENT_KINDS: dict[str, tuple[str, ...]] = {
    "greeting": GREETINGS, "greeting_follow_up": GREETING_FOLLOW_UPS,
    "greeting_reply": GREETING_REPLIES, "whats_new": WHATS_NEW, "closing": CLOSINGS,
    "closing_reply": CLOSING_REPLIES, "object": OBJECT, "object_colour": OBJECT_COLOUR,
    "colour": COLOUR, "scene": SCENE, "object_scene": OBJECT_SCENE, "scene_first": SCENE_FIRST,
    "object_after_scene": OBJECT_AFTER_SCENE,
    "object_colour_after_scene": OBJECT_COLOUR_AFTER_SCENE, "reaction": REACTIONS,
    "ask_colour": ASK_COLOUR, "ask_scene": ASK_SCENE, "ask_to_see": ASK_TO_SEE,
    "here_it_is": HERE_IT_IS, "showing_unasked": SHOWING_UNASKED, "after_reply": AFTER_REPLY,
    **{"reply_" + "_".join(sorted(kinds)): t for kinds, t in PHOTO_REPLIES.items()},
}

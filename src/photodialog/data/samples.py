"""Dialogues -> (context, response) samples, and fitting a context into a length budget.

The protocol (docs/architecture.md, "Evaluation protocol"): every turn ``i >= 1`` of a dialogue is a target, with turns
``[:i]`` as its context, whoever speaks. A model whose input is limited keeps the most recent
turns; ``truncate_context`` does that with a length function the model supplies (tokens,
counting a photo's slots), so this module needs no tokenizer. It never cuts inside an
``[IMG] ... [/IMG]`` span, and says what was lost: turns, photos, and above all whether the most
recent context photo (the one a reply most likely talks about) was among them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from photodialog.data.schema import PHOTO_SPAN, Dialogue, Photo, Sample, Turn

Cost = Callable[[Turn], int]


@dataclass
class TruncatedSample(Sample):
    """A ``Sample`` after ``truncate_context``.

    ``lost_latest_photo``: the most recent photo of the original context was dropped (the
    reply may talk about a photo the model did not see). ``cut_words``: words removed from the
    start of the newest context turn because it did not fit alone.
    """

    lost_latest_photo: bool = False
    cut_words: int = 0


def build_samples(dialogues: Iterable[Dialogue]) -> list[Sample]:
    """One sample per turn ``i >= 1`` of every dialogue, with turns ``[:i]`` as context."""
    return [
        Sample(dialogue_id=d.dialogue_id, turn_index=i, context=d.turns[:i], response=d.turns[i])
        for d in dialogues
        for i in range(1, len(d.turns))
    ]


def truncate_context(sample: Sample, cost: Cost, budget: int) -> TruncatedSample:
    """``sample`` with its context cut to fit ``budget`` (the response is not counted).

    Keeps the longest run of most recent turns whose ``cost`` sums to at most ``budget``,
    dropping whole oldest turns. If even the newest turn does not fit alone, words are dropped
    from its start, never inside a photo span; then, if that is not enough, whole photo spans
    from its start. ``dropped_turns``/``dropped_photos`` add to those already on ``sample``.
    """
    context = sample.context
    kept = _recent_turns_that_fit(context, cost, budget)
    cut_words = 0
    if not kept and context:
        shortened, cut_words = _shorten_turn(context[-1], cost, budget)
        kept = [shortened] if shortened is not None else []
    dropped_turns = len(context) - len(kept)
    dropped_photos = _count_photos(context) - _count_photos(kept)
    return TruncatedSample(
        dialogue_id=sample.dialogue_id,
        turn_index=sample.turn_index,
        context=kept,
        response=sample.response,
        dropped_turns=sample.dropped_turns + dropped_turns,
        dropped_photos=sample.dropped_photos + dropped_photos,
        lost_latest_photo=getattr(sample, "lost_latest_photo", False) or _lost_latest_photo(context, kept),
        cut_words=getattr(sample, "cut_words", 0) + cut_words,
    )


def _recent_turns_that_fit(context: list[Turn], cost: Cost, budget: int) -> list[Turn]:
    used = 0
    start = len(context)
    while start > 0:
        turn_cost = cost(context[start - 1])
        if used + turn_cost > budget:
            break
        used += turn_cost
        start -= 1
    return context[start:]


def _shorten_turn(turn: Turn, cost: Cost, budget: int) -> tuple[Turn | None, int]:
    """The turn with the fewest leading units removed that fits, and how many words went.

    A unit is a word outside photo spans, or a whole span. Words go first (a photo carries
    more than a few words); spans go only once no word is left. None when nothing fits.
    """
    words, spans = _units(turn.text)
    # Without a span to keep, the last word stays too: an empty turn is no context.
    most_words = len(words) if spans else len(words) - 1
    n_words = _smallest_fitting(most_words, lambda k: cost(_rebuilt(turn, words, spans, k, 0)) <= budget)
    if n_words is not None:
        return _rebuilt(turn, words, spans, n_words, 0), n_words
    n_spans = _smallest_fitting(len(spans) - 1, lambda m: cost(_rebuilt(turn, words, spans, len(words), m)) <= budget)
    if n_spans is not None:
        return _rebuilt(turn, words, spans, len(words), n_spans), len(words)
    return None, 0


def _units(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Words outside spans and whole spans, each with its position in the turn's unit order."""
    words: list[tuple[int, str]] = []
    spans: list[tuple[int, str]] = []
    position = 0
    last_end = 0
    for match in PHOTO_SPAN.finditer(text):
        for word in text[last_end : match.start()].split():
            words.append((position, word))
            position += 1
        spans.append((position, match.group(0)))
        position += 1
        last_end = match.end()
    for word in text[last_end:].split():
        words.append((position, word))
        position += 1
    return words, spans


def _rebuilt(turn: Turn, words, spans, drop_words: int, drop_spans: int) -> Turn:
    """``turn`` without its first ``drop_words`` words and first ``drop_spans`` spans (and their photos)."""
    units = sorted(words[drop_words:] + spans[drop_spans:])
    photos: list[Photo] = turn.photos[drop_spans:]
    return replace(turn, text=" ".join(unit for _, unit in units), photos=photos)


def _smallest_fitting(n: int, fits: Callable[[int], bool]) -> int | None:
    """Smallest k in 1..n with ``fits(k)``, by bisection (cost only falls as units go); None if ``fits(n)`` fails."""
    if n < 1 or not fits(n):
        return None
    low, high = 1, n  # invariant: fits(high)
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return high


def _count_photos(turns: list[Turn]) -> int:
    return sum(len(turn.photos) for turn in turns)


def _lost_latest_photo(context: list[Turn], kept: list[Turn]) -> bool:
    latest = next((turn.photos[-1] for turn in reversed(context) if turn.photos), None)
    if latest is None:
        return False
    return not any(photo is latest for turn in kept for photo in turn.photos)

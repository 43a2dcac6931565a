"""Does the text side do the task? The measures a pretrained start must pass before anything relies on it.

On a synthetic world, with greedy replies to every target turn of a split (gold contexts):

- ``caption_acc_{object,colour,scene,all}``: at every gold photo turn, the model's own caption names
  the gold photo's attributes (``attribute_metrics.caption_accuracy``: a turn where it shares
  nothing counts as wrong);
- ``share_f1`` (with precision and recall): it shares at the turns where the gold response does;
- ``reply_acc_object``: right after a photo whose object the text never names (the world's
  dialogues that open with a photo), its reply names the photo's object: it *sees*;
- ``reply_acc_object_blank``: the same contexts with the photo replaced by a blank grey one. Far
  below ``reply_acc_object``, it shows the perceptron is read, not bypassed.

All in percent. ``bench llm`` prints them for every checkpoint of a pretraining run, the trainer
for every checkpoint of a run on a synthetic world, and ``assets rebuild llm`` records them.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from photodialog.data.schema import Sample, Turn
from photodialog.evaluation.attribute_metrics import (
    caption_accuracy, gold_photo_attributes, reply_object_accuracy, unannounced_photo_turns,
)
from photodialog.evaluation.runner import generate_replies
from photodialog.evaluation.share_moment import share_moment_scores
from photodialog.models.generation_settings import GenerationSettings

BLANK_GREY = (128, 128, 128)


def text_competence(system, samples: list[Sample], settings: GenerationSettings, *, batch_size: int = 16,
                    progress: bool = False, truth=None) -> dict[str, float]:
    """The module docstring's measures of ``system`` on ``samples`` (a split's targets), in percent,
    with ``caption_turns`` and ``reply_turns`` (how many turns each counts). Keys whose turns do not
    occur (no gold photo turn, no unannounced photo) are left out. ``truth``: {photo_id: attributes}
    of a world whose captions leave something out (``data.synth.world.photo_attributes``)."""
    replies = generate_replies(system, samples, settings, batch_size=batch_size, progress=progress, desc="replies")
    gold_photo = gold_photo_attributes(samples, truth)
    result: dict[str, float] = {}
    captions = caption_accuracy([(replies[i].captions or [None])[0] for i in gold_photo], list(gold_photo.values()))
    result.update(captions.values)
    result.update(captions.counts)
    share = share_moment_scores([r.text for r in replies], [s.response.text for s in samples]).as_metric_set()
    result.update({k: v for k, v in share.values.items() if k.startswith("share_")})
    unannounced = unannounced_photo_turns(samples)
    if unannounced and system.model.perceptron is not None:
        order = list(unannounced)
        seen = [replies[i].text for i in order]
        result["reply_acc_object"] = reply_object_accuracy(seen, [unannounced[i] for i in order])
        blank = _with_blank_photos([samples[i] for i in order])
        blind = generate_replies(system, blank, settings, batch_size=batch_size, progress=progress, desc="replies, blank photos")
        result["reply_acc_object_blank"] = reply_object_accuracy([r.text for r in blind], [unannounced[i] for i in order])
        result["reply_turns"] = len(order)
    return result


def _with_blank_photos(samples: list[Sample]) -> list[Sample]:
    """``samples`` with every context photo file replaced by one blank grey photo (captions kept:
    a model that reads pixels never sees them)."""
    # pillow: only this control needs an image written
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="photodialog-blank-"))
    path = folder / "blank.png"
    Image.new("RGB", (64, 64), BLANK_GREY).save(path)

    def blank_turn(turn: Turn) -> Turn:
        return replace(turn, photos=[replace(photo, path=str(path)) for photo in turn.photos])

    return [replace(s, context=[blank_turn(t) for t in s.context]) for s in samples]

"""The retrieval-free floor: answer every turn with the most frequent training reply.

A model that has learnt anything about the dialogues must beat it; the demo's report says
whether each model does.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from photodialog.data.loading import load_dialogues
from photodialog.data.samples import build_samples
from photodialog.evaluation.runner import load_targets
from photodialog.evaluation.text_metrics import text_scores


def most_frequent_reply(world: Path) -> str:
    replies = Counter(s.response.text for s in build_samples(load_dialogues(world, "train")))
    return replies.most_common(1)[0][0]


def most_frequent_reply_scores(world: Path, max_samples: int = 0) -> dict:
    """BLEU-1/2 and ROUGE-L of the most frequent training reply on the test targets."""
    reply = most_frequent_reply(world)
    targets = load_targets(world, "test", max_samples)
    scores = text_scores([reply] * len(targets), [t.response.text for t in targets])
    return {"reply": reply, "targets": len(targets), "bleu1": scores.bleu1, "bleu2": scores.bleu2, "rouge_l": scores.rouge_l}

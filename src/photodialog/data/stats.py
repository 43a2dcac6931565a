"""Table 1 of the paper: the size of a dataset, per split and in total.

Counted from the published messages (``loading.load_messages``), not from merged turns:

- ``dialogues``: records loaded;
- ``utterances``: messages, excluding messages in which photos are shared;
- ``consecutive_utterances``: the same messages, counting a run of messages of one speaker
  once. Photo-sharing messages are removed *before* runs are counted (the paper excludes them
  from "the calculation"), so "A: look", "A: <photo>", "A: cute, right?" is one run, and so is
  "A: hi", "B: <photo>", "A: there": the photo message does not split A's run;
- ``U/D`` = consecutive utterances / dialogues (PhotoChat train: 92,479 / 10,286 = 8.99);
- ``photos``: photos shared (a DialogCC utterance may share several);
- ``distinct_photos``: distinct by ``photo_id``, else URL (else caption). The total row takes
  the union over splits; the paper's total equals the sum of its splits, which agrees when no
  photo appears in two splits;
- ``I/D`` = photos / dialogues;
- ``local_photos`` (not in the paper): photos with a file under ``photos/``.

On a synthetic world (captions that name an object, colour and scene) it also gives the
**caption ceiling** (``caption_ceiling``): of the share targets (turns ``i >= 1`` that share a
photo, after turn merging), the share whose context says each attribute of the photo. A model that
writes its caption from the context can be right at most that often.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from photodialog.data.layout import SPLITS
from photodialog.data.loading import load_messages, merge_messages
from photodialog.data.load_report import LoadReport
from photodialog.data.samples import build_samples
from photodialog.data.schema import PHOTO_SPAN, Dialogue, Photo, Turn
from photodialog.data.synth.attributes import KINDS, find_attributes

NO_SPLIT = "(none)"  # how dialogues from files without a split are listed


@dataclass
class SplitStats:
    """Table 1's columns for one split (or the total)."""

    split: str
    dialogues: int = 0
    utterances: int = 0
    consecutive_utterances: int = 0
    photos: int = 0
    local_photos: int = 0
    photo_keys: set[str] = field(default_factory=set, repr=False)

    @property
    def distinct_photos(self) -> int:
        """Photos counted once each (by id, else URL or file)."""
        return len(self.photo_keys)

    @property
    def utterances_per_dialogue(self) -> float:
        """U/D: consecutive utterances per dialogue."""
        return self.consecutive_utterances / self.dialogues if self.dialogues else 0.0

    @property
    def photos_per_dialogue(self) -> float:
        """I/D: photos per dialogue."""
        return self.photos / self.dialogues if self.dialogues else 0.0

    def add(self, dialogue: Dialogue) -> None:
        """Count one *message-level* dialogue (one ``Turn`` per published message)."""
        utterances, runs = count_utterances(dialogue.turns)
        self.dialogues += 1
        self.utterances += utterances
        self.consecutive_utterances += runs
        for turn in dialogue.turns:
            for photo in turn.photos:
                self.photos += 1
                self.local_photos += photo.path is not None
                self.photo_keys.add(photo_key(photo))

    def absorb(self, other: SplitStats) -> None:
        """Add another split's counts (distinct photos as a union)."""
        self.dialogues += other.dialogues
        self.utterances += other.utterances
        self.consecutive_utterances += other.consecutive_utterances
        self.photos += other.photos
        self.local_photos += other.local_photos
        self.photo_keys |= other.photo_keys

    def as_dict(self) -> dict:
        """The row as JSON-ready values (ratios rounded to 4 places)."""
        return {
            "split": self.split,
            "dialogues": self.dialogues,
            "utterances": self.utterances,
            "consecutive_utterances": self.consecutive_utterances,
            "utterances_per_dialogue": round(self.utterances_per_dialogue, 4),
            "photos": self.photos,
            "distinct_photos": self.distinct_photos,
            "photos_per_dialogue": round(self.photos_per_dialogue, 4),
            "local_photos": self.local_photos,
        }


@dataclass
class DatasetStats:
    """Table 1 for one dataset folder: one row per split, the total, and the load report."""

    path: str
    splits: list[SplitStats]
    total: SplitStats
    report: LoadReport
    ceiling: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Table 1 as JSON: per split, the total, the formats read and the load report (and the
        caption ceiling on a synthetic world)."""
        return {
            "path": self.path,
            "formats": dict(self.report.formats),
            "splits": {row.split: row.as_dict() for row in self.splits},
            "total": self.total.as_dict(),
            "load_report": self.report.as_dict(),
            **({"caption_ceiling": self.ceiling} if self.ceiling else {}),
        }

    def table(self) -> str:
        """Table 1 as aligned text, with a legend."""
        header = ["Split", "# Dial", "# Utter", "# CUtter", "U/D", "# Img", "# DImg", "I/D", "# Local"]
        rows = [_row_cells(row) for row in [*self.splits, self.total]]
        widths = [max(len(str(cells[i])) for cells in [header, *rows]) for i in range(len(header))]
        lines = [f"{self.path} ({', '.join(self.report.formats) or 'no'} format)"]
        for cells in [header, *rows]:
            lines.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
        lines.append("U/D = # CUtter / # Dial; I/D = # Img / # Dial; # Utter excludes photo-sharing messages;")
        lines.append("# CUtter counts a run of one speaker's messages once; # Local = photos with a local file")
        for split, row in self.ceiling.items():
            lines.append(f"caption ceiling, {split} ({row['targets']:.0f} share targets): the context says the photo's "
                         + ", ".join(f"{kind} {row[kind]:.1f}%" for kind in (*KINDS, "all")))
        return "\n".join(lines)


def count_utterances(messages: list[Turn]) -> tuple[int, int]:
    """(utterances, consecutive utterances) of one message-level dialogue; see the module docstring."""
    utterances = runs = 0
    previous_speaker = None
    for message in messages:
        if message.photos:
            continue  # photo-sharing messages are excluded, and do not break a run
        utterances += 1
        if message.speaker != previous_speaker:
            runs += 1
            previous_speaker = message.speaker
    return utterances, runs


def photo_key(photo: Photo) -> str:
    """What makes two shared photos the same photo: ``photo_id``, else URL, else caption."""
    if photo.photo_id:
        return f"id:{photo.photo_id}"
    if photo.url:
        return f"url:{photo.url}"
    return f"caption:{photo.caption}"


def table1(dialogues: list[Dialogue]) -> tuple[list[SplitStats], SplitStats]:
    """Rows per split (train, dev, test first) and the total, from message-level dialogues."""
    by_split: dict[str, SplitStats] = {}
    for dialogue in dialogues:
        name = dialogue.split or NO_SPLIT
        by_split.setdefault(name, SplitStats(name)).add(dialogue)
    order = {name: i for i, name in enumerate(SPLITS)}
    rows = sorted(by_split.values(), key=lambda row: (order.get(row.split, len(order)), row.split))
    total = SplitStats("total")
    for row in rows:
        total.absorb(row)
    return rows, total


def dataset_stats(
    path: str | Path,
    split: str | None = None,
    *,
    strict: bool = False,
    report: LoadReport | None = None,
    check_photos: bool = False,
) -> DatasetStats:
    """Load ``path`` (every split, or only ``split``) and count Table 1.

    Problems are counted in ``report`` (skipped records do not enter the counts); strict mode
    raises ``DataError`` at the first one, as does a dataset with nothing usable left.
    """
    report = LoadReport() if report is None else report
    messages = load_messages(path, split, strict=strict, report=report, check_photos=check_photos)
    rows, total = table1(messages)
    return DatasetStats(path=str(path), splits=rows, total=total, report=report, ceiling=caption_ceiling(messages))


def caption_ceiling(dialogues: list[Dialogue]) -> dict[str, dict[str, float]]:
    """Per split, of the share targets whose gold caption names an object, colour and scene: the %
    whose context text (context photos' captions left out: a model reads their pixels) names each
    of the photo's attributes, and all three (``all``); ``targets`` = how many. ``{}`` when no
    caption names all three (not a synthetic world)."""
    counts: dict[str, dict[str, float]] = {}
    for dialogue in dialogues:
        for sample in build_samples([merge_messages(dialogue)]):
            if not sample.response.photos:
                continue
            gold = find_attributes(sample.response.photos[0].caption)
            if any(value is None for value in gold.values()):
                continue
            said = [find_attributes(PHOTO_SPAN.sub(" ", turn.text)) for turn in sample.context]
            hit = {kind: any(s[kind] == gold[kind] for s in said) for kind in KINDS}
            row = counts.setdefault(dialogue.split or NO_SPLIT, dict.fromkeys((*KINDS, "all", "targets"), 0.0))
            row["targets"] += 1
            for kind in KINDS:
                row[kind] += hit[kind]
            row["all"] += all(hit.values())
    order = {name: i for i, name in enumerate(SPLITS)}
    return {split: {k: (100.0 * v / row["targets"] if k != "targets" else v) for k, v in row.items()}
            for split, row in sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))}


def _row_cells(row: SplitStats) -> list[str]:
    return [
        row.split,
        f"{row.dialogues:,}",
        f"{row.utterances:,}",
        f"{row.consecutive_utterances:,}",
        f"{row.utterances_per_dialogue:.2f}",
        f"{row.photos:,}",
        f"{row.distinct_photos:,}",
        f"{row.photos_per_dialogue:.2f}",
        f"{row.local_photos:,}",
    ]

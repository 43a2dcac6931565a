"""From a dataset folder to the micro-batches each training process consumes.

The order of samples is a pure function of (seed, epoch): a permutation, or weighted draws
when responses that share a photo are oversampled. Each process takes its own slice of every
global micro-batch, so processes see different data, and resuming at "epoch e, micro-batch k"
replays exactly what an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from photodialog.config import DataConfig
from photodialog.data.loading import load_dialogues
from photodialog.data.load_report import LoadReport
from photodialog.data.schema import PHOTO_SPAN, Dialogue, Sample
from photodialog.models.formatting import DialogueFormatter, EncodedSample, ResponseCaption

log = logging.getLogger(__name__)


def load_split(config: DataConfig, split: str, progress: bool = True) -> tuple[list[Dialogue], LoadReport]:
    """Dialogues of one split, with the report of what was skipped and why (``progress``: the
    loader's reading and checking bars).

    Every photo is decoded once here: one that cannot be read is counted in the report and
    treated as missing, instead of being dropped from batches without a word during training.
    """
    report = LoadReport()
    dialogues = load_dialogues(config.path, split, strict=config.strict, report=report, check_photos=True, progress=progress)
    if config.max_dialogues:
        dialogues = dialogues[: config.max_dialogues]
    return dialogues, report


def tokenizer_texts(dialogues: list[Dialogue]) -> list[str]:
    """The text the tiny preset's tokenizers learn from: turns (photo markers removed) and captions."""
    texts = []
    for dialogue in dialogues:
        for turn in dialogue.turns:
            texts.append(" ".join(PHOTO_SPAN.sub(lambda m: m.group(1), turn.text).split()))
    return texts + ["A: B:"]


def training_photos(dialogues: list[Dialogue]) -> list[str]:
    """The files of every photo the dialogues share (the tiny preset's VAE learns from them)."""
    return [photo.path for dialogue in dialogues for turn in dialogue.turns for photo in turn.photos]


class EncodedSamples(torch.utils.data.Dataset):
    """Samples encoded once by the formatter (token ids are reused every epoch)."""

    def __init__(self, samples: list[Sample], formatter: DialogueFormatter):
        self.samples, self.formatter = samples, formatter
        self._cache: dict[int, EncodedSample] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> EncodedSample:
        if index not in self._cache:
            self._cache[index] = self.formatter.encode(self.samples[index])
        return self._cache[index]

    def shares_photo(self, index: int) -> bool:
        """Whether sample ``index``'s response shares a photo (for oversampling those)."""
        return self.samples[index].response.shares_photo

    def replies_to_photo(self, index: int) -> bool:
        """Whether sample ``index``'s context ends with a photo (its response answers it)."""
        context = self.samples[index].context
        return bool(context) and context[-1].shares_photo


class CaptionPairs(torch.utils.data.Dataset):
    """(caption, photo) pairs of the responses that share a photo: the pipeline's image part."""

    def __init__(self, samples: list[Sample]):
        self.pairs = [photo for s in samples for photo in s.response.photos if photo.path]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> ResponseCaption:
        photo = self.pairs[index]
        return ResponseCaption(positions=[], text=photo.caption, photo=photo)

    def shares_photo(self, index: int) -> bool:
        """Always True: every caption pair is a shared photo."""
        return True

    def replies_to_photo(self, index: int) -> bool:
        """Always False: a caption pair answers nothing."""
        return False


def training_dataset(samples: list[Sample], formatter: DialogueFormatter | None):
    """What a system trains on: encoded samples when it has an LLM (a formatter), else the
    (caption, photo) pairs of the responses that share a photo (a generator trained alone)."""
    return EncodedSamples(samples, formatter) if formatter is not None else CaptionPairs(samples)


@dataclass
class EpochOrder:
    """The sample order of one epoch, cut into global micro-batches."""

    indices: list[int]
    global_micro_batch: int

    def __len__(self) -> int:
        return len(self.indices) // self.global_micro_batch  # the last partial batch is dropped

    def local_batch(self, position: int, rank: int, world: int) -> list[int]:
        """Process ``rank``'s slice (of ``world``) of global micro-batch ``position``: sample indices."""
        start = position * self.global_micro_batch
        chunk = self.indices[start : start + self.global_micro_batch]
        per_process = self.global_micro_batch // world
        return chunk[rank * per_process : (rank + 1) * per_process]


def epoch_order(dataset, epoch: int, seed: int, global_micro_batch: int, photo_weight: float = 1.0,
                reply_weight: float = 1.0) -> EpochOrder:
    """Permutation (or weighted draws, when photo-sharing responses or replies to a photo are
    oversampled) for ``epoch``."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    count = len(dataset)
    if photo_weight == 1.0 and reply_weight == 1.0:
        indices = torch.randperm(count, generator=generator).tolist()
    else:
        weights = torch.tensor([(photo_weight if dataset.shares_photo(i) else 1.0) * (reply_weight if dataset.replies_to_photo(i) else 1.0)
                                for i in range(count)])
        indices = torch.multinomial(weights, count, replacement=True, generator=generator).tolist()
    return EpochOrder(indices, global_micro_batch)

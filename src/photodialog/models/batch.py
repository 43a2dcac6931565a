"""Padded batches of encoded samples, with the photos loaded as tensors.

Context photos become the perceptron's input; photos shared in responses become the diffusion
targets. A photo that cannot be read is not fatal: a context photo is replaced by a blank one
and a target photo just gives no image loss (its caption's ``target`` is -1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from photodialog.data.photos import load_photo
from photodialog.data.schema import Photo
from photodialog.errors import DataError
from photodialog.models.formatting import IGNORE, EncodedSample, ResponseCaption


@dataclass
class BatchCaption:
    """A caption in a response of the batch (a photo the model should share there)."""

    sample: int
    positions: list[int]
    text: str
    gold_ids: list[int]
    target: int  # row in Batch.target_pixels, or -1 when the photo has no usable pixels


@dataclass
class Batch:
    """One training (or dev) micro-batch: B token sequences in the training layout (right-padded)
    with their context photos as perceptron pixels and the photos their responses share as
    diffusion targets. ``captions`` lists every caption span in the responses; a caption's
    ``target`` indexes ``target_pixels`` (-1: its photo gave no pixels, so no L_v for it).
    A generator trained alone (the pipeline's image part) gets B = len(captions) and T = 0."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    labels: torch.Tensor  # [B, T], IGNORE outside responses
    photo_slots: torch.Tensor  # [B, T] bool
    context_pixels: torch.Tensor  # [P, 3, S, S], in slot order
    captions: list[BatchCaption] = field(default_factory=list)
    target_pixels: torch.Tensor | None = None  # [Q, 3, H, W] in [-1, 1]
    # The photo file of each context_pixels / target_pixels row ("" for a blank stand-in): the
    # keys under which the outputs of frozen parts are cached (photodialog.training.caches).
    context_keys: list[str] = field(default_factory=list)
    target_keys: list[str] = field(default_factory=list)
    host_labels: torch.Tensor | None = None
    """``labels`` as they were in host memory before ``to`` moved them to a GPU: the model finds the
    response positions there without waiting for the GPU."""

    def to(self, device) -> "Batch":
        """Move every tensor field to ``device`` (in place); returns the batch. To a CUDA device the
        copies go through pinned memory without blocking, so the host does not wait for the GPU's queue."""
        device = torch.device(device)
        if device.type != "cpu" and self.host_labels is None and self.labels.device.type == "cpu":
            self.host_labels = self.labels
        pinned = device.type == "cuda"
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor) and name != "host_labels":
                if pinned and value.device.type == "cpu":
                    setattr(self, name, value.pin_memory().to(device, non_blocking=True))
                else:
                    setattr(self, name, value.to(device))
        return self

    @property
    def size(self) -> int:
        """B, the number of samples."""
        return self.input_ids.shape[0]


class PhotoTensors:
    """Loads photos as tensors for the perceptron and the generator, with a small memory cache."""

    def __init__(self, perceptron_transform=None, target_transform=None, cache_size: int = 4096):
        self.perceptron_transform = perceptron_transform
        self.target_transform = target_transform
        self.cache: dict[tuple[str, str], torch.Tensor] = {}
        self.cache_size = cache_size

    def get(self, photo: Photo, kind: str) -> torch.Tensor | None:
        """``photo`` as the tensor of ``kind`` (``context``: the perceptron's input, ``target``:
        the generator's, [3, H, W] in [-1, 1]); None when it has no file, that part is absent,
        or the file cannot be read (a ``DataError`` from ``load_photo`` is not fatal here)."""
        transform = self.perceptron_transform if kind == "context" else self.target_transform
        if transform is None or not photo.path:
            return None
        key = (kind, photo.path)
        if key not in self.cache:
            try:
                tensor = transform(load_photo(photo.path))
            except DataError:
                return None
            if len(self.cache) >= self.cache_size:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = tensor
        return self.cache[key]


def collate(encoded: list[EncodedSample], photos: PhotoTensors, *, pad_id: int, context_size: int = 0) -> Batch:
    """Right-padded batch (training layout) of ``encoded`` samples."""
    length = max(len(e.input_ids) for e in encoded)
    count = len(encoded)
    input_ids = torch.full((count, length), pad_id, dtype=torch.long)
    labels = torch.full((count, length), IGNORE, dtype=torch.long)
    mask = torch.zeros((count, length), dtype=torch.long)
    slots = torch.zeros((count, length), dtype=torch.bool)
    context, targets, captions = [], [], []
    context_keys, target_keys = [], []
    for row, sample in enumerate(encoded):
        n = len(sample.input_ids)
        input_ids[row, :n] = torch.tensor(sample.input_ids)
        labels[row, :n] = torch.tensor(sample.labels)
        mask[row, :n] = 1
        slots[row, sample.photo_slots] = True
        for photo in sample.context_photos:
            tensor = photos.get(photo, "context")
            context.append(tensor if tensor is not None else torch.zeros(3, context_size, context_size))
            context_keys.append(photo.path if tensor is not None else "")
        for caption in sample.captions:
            tensor = photos.get(caption.photo, "target") if caption.photo is not None else None
            target = -1
            if tensor is not None:
                target = len(targets)
                targets.append(tensor)
                target_keys.append(caption.photo.path)
            gold = [sample.input_ids[p] for p in caption.positions]
            captions.append(BatchCaption(sample=row, positions=caption.positions, text=caption.text, gold_ids=gold, target=target))
    return Batch(
        input_ids=input_ids, attention_mask=mask, labels=labels, photo_slots=slots,
        context_pixels=torch.stack(context) if context else torch.zeros(0, 3, context_size, context_size),
        captions=captions, target_pixels=torch.stack(targets) if targets else None,
        context_keys=context_keys, target_keys=target_keys,
    )


def caption_batch(items: list[ResponseCaption], photos: PhotoTensors) -> Batch:
    """A batch for a generator trained alone: captions and target photos, no token sequence.

    ``input_ids``, ``attention_mask``, ``labels`` and ``photo_slots`` are [B, 0]; a caption whose
    photo cannot be read gets ``target`` -1 (no image loss).
    """
    targets, captions, keys = [], [], []
    for row, item in enumerate(items):
        tensor = photos.get(item.photo, "target")
        target = -1
        if tensor is not None:
            target = len(targets)
            targets.append(tensor)
            keys.append(item.photo.path)
        captions.append(BatchCaption(sample=row, positions=[], text=item.text, gold_ids=[], target=target))
    empty = torch.zeros(len(items), 0, dtype=torch.long)
    return Batch(
        input_ids=empty, attention_mask=empty, labels=empty, photo_slots=empty.bool(), context_pixels=torch.zeros(0, 3, 1, 1),
        captions=captions, target_pixels=torch.stack(targets) if targets else None, target_keys=keys,
    )

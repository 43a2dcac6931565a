"""What ``photodialog eval`` is asked to do: the checkpoint, the data, the seeds, the settings.

Its own module so that the evaluation (``evaluate``) and what its result records
(``eval_record``) both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from photodialog.evaluation.image_metrics import INCEPTION


@dataclass
class EvalRequest:
    """What to evaluate and how; ``None`` fields fall back to the checkpoint's ``eval`` config."""

    checkpoint: str
    data: str | None = None
    """Dataset folder; default: the checkpoint's ``data.path``."""
    split: str = "test"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    out: str | None = None
    """Result JSON; default ``<checkpoint>/eval/<split>.json``."""
    max_samples: int = 0
    """Only the first N target turns (0 = all, the protocol)."""
    inception_weights: str | None = None
    device: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    """``GenerationSettings`` fields to override (``decoding``, ``num_beams``, ``diffusion_steps``...)."""
    batch_size: int | None = None
    name: str | None = None
    """Model name in tables; default ``end-to-end``, ``pipeline`` or ``Divter``."""
    isc_splits: int = 10
    feature_extractor: str = INCEPTION
    """torch-fidelity extractor for IS/FID; the default is the paper's Inception."""
    progress: bool = True

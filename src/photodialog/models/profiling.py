"""Named ranges of a training step for ``torch.profiler`` (``photodialog bench step --profile``).

``part("llm")`` opens ``torch.profiler.record_function("photodialog::llm")`` while a profiler
runs, and nothing otherwise: one C call per range, so the labels can stay in the model's code.
``photodialog.bench.profile`` reads the ranges back, forward ops by the range they ran in and
backward ops by the forward op that created their autograd node.
"""

from __future__ import annotations

import contextlib

import torch

PREFIX = "photodialog::"


def part(name: str):
    """A profiler range named ``photodialog::<name>`` when profiling, else a no-op context."""
    if torch._C._autograd._profiler_enabled():
        return torch.profiler.record_function(PREFIX + name)
    return contextlib.nullcontext()

"""The temperature schedule of STGS (paper §3.1.2) and the learning-rate schedule."""

from __future__ import annotations

import math


def tau_at(step: int, *, start: float, end: float, anneal_steps: int, shape: str = "linear") -> float:
    """tau annealed from ``start`` to ``end`` over ``anneal_steps`` optimizer steps, then held.

    ``linear`` interpolates tau itself; ``exponential`` interpolates log tau (a constant
    factor per step), which spends longer at low temperatures.
    """
    if anneal_steps <= 0 or step >= anneal_steps:
        return end
    fraction = step / anneal_steps
    if shape == "exponential":
        return math.exp(math.log(start) + fraction * (math.log(end) - math.log(start)))
    return start + fraction * (end - start)


def warmup_then_constant(warmup_steps: int):
    """LambdaLR factor: linear warmup over ``warmup_steps`` (paper: 1,000), then constant."""

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0

    return factor

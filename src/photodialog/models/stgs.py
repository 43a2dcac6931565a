"""Straight-through Gumbel-Softmax (paper §2.4.1, Eq. 4-7).

Forward: an exact one-hot of ``argmax((o + g) / tau)``. Backward: the gradient of the soft
sample ``softmax((o + g) / tau)`` (Eq. 6, logits used for log-probabilities). The one-hot is
written ``hard + (soft - soft.detach())``: in floating point ``x - x`` is exactly zero, so the
forward value is the one-hot bit for bit (``hard - sg[soft] + soft`` would only be close).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def gumbel_noise(shape: torch.Size, *, generator: torch.Generator | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard Gumbel samples ``-log(-log(u))``, ``u ~ Uniform(0, 1)`` (Eq. 4), kept finite."""
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    tiny = torch.finfo(dtype).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))


@dataclass
class STGSSample:
    """A straight-through sample over the LLM vocabulary for some positions.

    ``tokens`` are the sampled ids (the one-hot's hot index); ``soft`` is the Gumbel-softmax
    distribution that carries the gradient. ``one_hot()`` is the dense Eq. 7 value; the bridge
    only gathers the columns it needs with ``gather()``.
    """

    tokens: torch.Tensor  # [m] long
    soft: torch.Tensor  # [m, V] float, requires grad through the logits
    argmax_tokens: torch.Tensor | None = None  # [m] long: the logits' argmax (no noise); None: ``tokens`` are it

    def argmax(self) -> torch.Tensor:
        """The teacher-forced argmax token of every row [m] (the authors' caption), whatever the noise."""
        return self.tokens if self.argmax_tokens is None else self.argmax_tokens

    def one_hot(self) -> torch.Tensor:
        """The straight-through rows [m, |V|]: exactly one-hot forward, the soft sample's gradient backward (Eq. 7)."""
        hard = torch.nn.functional.one_hot(self.tokens, self.soft.shape[-1]).to(self.soft.dtype)
        return hard + (self.soft - self.soft.detach())

    def gather(self, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Values of ``one_hot()[rows, columns]`` without building the dense one-hot."""
        soft = _Gather.apply(self.soft, rows, columns)
        hard = (self.tokens[rows] == columns).to(soft.dtype)
        return hard + (soft - soft.detach())


class _Gather(torch.autograd.Function):
    """``soft[rows, columns]`` whose backward writes one gradient buffer (PyTorch's own
    advanced-indexing backward fills a zero tensor and then copies it once more)."""

    @staticmethod
    def forward(ctx, soft, rows, columns):
        ctx.save_for_backward(rows, columns)
        ctx.shape = soft.shape
        return soft[rows, columns]

    @staticmethod
    def backward(ctx, grad):
        rows, columns = ctx.saved_tensors
        out = grad.new_zeros(ctx.shape)
        out.index_put_((rows, columns), grad, accumulate=True)
        return out, None, None


def straight_through_gumbel_softmax(
    logits: torch.Tensor,
    tau: float,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
) -> STGSSample:
    """Sample one token per row of ``logits`` [m, V] with a straight-through gradient.

    ``noise=False`` gives the plain straight-through softmax (argmax forward); at ``tau=1`` it is
    the authors' code's estimator (one-hot + softmax - sg[softmax], no temperature). The sample's
    ``argmax()`` is the logits' argmax either way. Computed in float32 whatever the logits' dtype: at tau = 0.01 half precision
    overflows.
    """
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    scores = logits.float()
    argmax_tokens = None
    if noise:
        argmax_tokens = scores.detach().argmax(dim=-1)  # ids only: the [m, V] logits are not kept
        scores = scores + gumbel_noise(scores.shape, generator=generator, device=scores.device)
    scores = scores / tau
    soft = torch.softmax(scores, dim=-1)
    return STGSSample(tokens=scores.argmax(dim=-1), soft=soft, argmax_tokens=argmax_tokens)

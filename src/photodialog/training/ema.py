"""An exponential moving average of the trainable weights, used for inference when kept.

Diffusion models sample far better from averaged weights than from the last noisy update
(standard since DDPM); with a high learning rate and a short run, as in the tiny recipes, the
difference is large. The average lives beside the model, is saved with every checkpoint
(``ema.safetensors``) and restored by ``--resume``; ``load_system`` loads it instead of the last
weights when the checkpoint has one.

Under FSDP a parameter is a DTensor of which each process holds one shard (dim 0). The average is
then a DTensor of the same layout, and each process updates only its own shard. That is exact:
the average is elementwise, so the shard of the average is the average of the shard, with the same
floating-point operations in the same order as on whole tensors. Saving gathers the shards into
whole tensors (collective: every process calls ``state``), and loading cuts the whole saved
tensors into this process's shard, so ``ema.safetensors`` is the same file under every engine.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch



class WeightAverage:
    """``avg <- decay * avg + (1 - decay) * w`` after every optimizer step, with a warm start:
    the effective decay is ``min(decay, (1 + step) / (10 + step))`` so early weights fade fast."""

    def __init__(self, named_parameters: dict[str, torch.nn.Parameter], decay: float):
        self.decay = decay
        self.parameters = named_parameters
        self.average = {name: p.detach().clone().float() for name, p in named_parameters.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average: avg = d * avg + (1 - d) * w, with the decay warmed
        up as d = min(decay, (1 + n) / (10 + n)) after n updates.
        """
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        names = list(self.average)
        averages = [_local(self.average[n]) for n in names]  # this process's shard under FSDP (a view: updated in place)
        current = [_local(self.parameters[n].detach()).float() for n in names]
        torch._foreach_mul_(averages, decay)
        torch._foreach_add_(averages, current, alpha=1 - decay)

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged weights by name as whole float32 tensors, with the update count (saved as
        ``ema.safetensors``). Under FSDP this gathers every process's shard: call it on all of them."""
        return {**{name: _whole(value) for name, value in self.average.items()}, "__updates__": torch.tensor(self.updates)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average and its update count from ``state`` (what ``state()`` returned: whole
        tensors; under FSDP each process keeps its shard of them). Raises ``KeyError`` for a name
        the average does not have."""
        self.updates = int(state.pop("__updates__", torch.tensor(0)))
        with torch.no_grad():
            for name, value in state.items():
                target = self.average[name]
                _local(target).copy_(_shard_like(value.to(target.dtype), target))

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the model for the duration (e.g. a dev evaluation)."""
        saved = {name: p.detach().clone() for name, p in self.parameters.items()}
        with torch.no_grad():
            for name, p in self.parameters.items():
                p.copy_(self.average[name].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.parameters.items():
                    p.copy_(saved[name])


def _is_sharded(tensor: torch.Tensor) -> bool:
    # imports torch.distributed's DTensor: only sharded (FSDP2) parameters need it
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """This process's shard of an FSDP2 DTensor (a view), or the tensor itself."""
    return tensor.to_local() if _is_sharded(tensor) else tensor


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP2 DTensor (collective: gathers every shard), or the tensor itself."""
    return tensor.full_tensor() if _is_sharded(tensor) else tensor


def _shard_like(whole: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """This process's shard of ``whole`` in the layout of DTensor ``like`` (no communication: every
    process holds ``whole``), or ``whole`` itself when ``like`` is a plain tensor."""
    if not _is_sharded(like):
        return whole
    # imports torch.distributed's DTensor: only sharded (FSDP2) parameters need it
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(whole.to(like.device), like.device_mesh, like.placements, src_data_rank=None).to_local()

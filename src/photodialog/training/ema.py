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

Under DeepSpeed ZeRO-3 a parameter's values live in ``param.ds_tensor``, this process's partition
of the flattened weight (the last one padded); the whole weight exists only while a module runs.
Each process then averages its own partition, exact for the same reason, ``state`` gathers the
partitions over the parameter's process group and ``load`` cuts the whole tensors again.
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
        # a DTensor of the parameter's layout under FSDP; this process's partition under ZeRO-3
        self.average = {name: (p.ds_tensor if _is_zero3(p) else p).detach().clone().float() for name, p in named_parameters.items()}
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
        current = [_own(self.parameters[n]).float() for n in names]
        torch._foreach_mul_(averages, decay)
        torch._foreach_add_(averages, current, alpha=1 - decay)

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged weights by name as whole float32 tensors, with the update count (saved as
        ``ema.safetensors``). Under FSDP this gathers every process's shard: call it on all of them."""
        whole = {name: _whole(value, self.parameters[name]) for name, value in self.average.items()}
        return {**whole, "__updates__": torch.tensor(self.updates)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average and its update count from ``state`` (what ``state()`` returned: whole
        tensors; under FSDP each process keeps its shard of them). Raises ``KeyError`` for a name
        the average does not have."""
        self.updates = int(state.pop("__updates__", torch.tensor(0)))
        with torch.no_grad():
            for name, value in state.items():
                target = self.average[name]
                _local(target).copy_(_shard_like(value.to(target.dtype), target, self.parameters[name]))

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the model for the duration (e.g. a dev evaluation). Under
        DeepSpeed ZeRO-3 collective: every process calls it."""
        if any(_is_zero3(p) for p in self.parameters.values()):
            with self._zero3_swapped_in():
                yield
            return
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

    @contextmanager
    def _zero3_swapped_in(self):
        # imports DeepSpeed: only ZeRO-3 parameters need it
        from deepspeed.runtime.zero import GatheredParameters

        average = self.state()
        names = list(self.parameters)
        params = [self.parameters[n] for n in names]
        saved = {}
        with GatheredParameters(params, modifier_rank=0), torch.no_grad():  # every process writes the same values
            for name, p in zip(names, params):
                saved[name] = p.detach().clone()
                p.data.copy_(average[name].to(p.dtype))
        try:
            yield
        finally:
            with GatheredParameters(params, modifier_rank=0), torch.no_grad():
                for name, p in zip(names, params):
                    p.data.copy_(saved[name])


def _is_zero3(param) -> bool:
    """True for a DeepSpeed ZeRO-3 parameter (partitioned: its values are in ``ds_tensor``)."""
    return hasattr(param, "ds_tensor")


def _own(param) -> torch.Tensor:
    """The values this process holds of ``param``: its ZeRO-3 partition (flat), its FSDP2 shard, or all of it."""
    return param.ds_tensor.detach() if _is_zero3(param) else _local(param.detach())


def _is_sharded(tensor: torch.Tensor) -> bool:
    # imports torch.distributed's DTensor: only sharded (FSDP2) parameters need it
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """This process's shard of an FSDP2 DTensor (a view), or the tensor itself."""
    return tensor.to_local() if _is_sharded(tensor) else tensor


def _whole(tensor: torch.Tensor, param=None) -> torch.Tensor:
    """The whole tensor of an FSDP2 DTensor or of ``param``'s ZeRO-3 partition ``tensor``
    (collective: gathers every shard), or the tensor itself."""
    if _is_sharded(tensor):
        return tensor.full_tensor()
    if param is None or not _is_zero3(param):
        return tensor
    # imports torch.distributed: only ZeRO-3 partitions need it
    import torch.distributed as dist

    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(param.ds_process_group))]
    dist.all_gather(parts, tensor.contiguous(), group=param.ds_process_group)
    return torch.cat(parts)[: param.ds_numel].view(param.ds_shape)


def _shard_like(whole: torch.Tensor, like: torch.Tensor, param=None) -> torch.Tensor:
    """This process's shard of ``whole`` in the layout of DTensor ``like`` or of ``param``'s ZeRO-3
    partition (no communication: every process holds ``whole``), or ``whole`` itself otherwise."""
    if param is not None and _is_zero3(param):
        # imports torch.distributed: only ZeRO-3 partitions need it
        import torch.distributed as dist

        size = like.numel()
        start = size * dist.get_rank(param.ds_process_group)
        flat = torch.zeros(size * dist.get_world_size(param.ds_process_group), dtype=whole.dtype)
        flat[: whole.numel()] = whole.flatten()
        return flat[start : start + size].to(like.device)
    if not _is_sharded(like):
        return whole
    # imports torch.distributed's DTensor: only sharded (FSDP2) parameters need it
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(whole.to(like.device), like.device_mesh, like.placements, src_data_rank=None).to_local()

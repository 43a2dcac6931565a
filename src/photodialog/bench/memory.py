"""Peak memory of the tensors a piece of code creates, measured the same way on CPU and GPU.

CPU PyTorch has no ``max_memory_allocated``, so ``AllocationTimeline`` is a
``TorchDispatchMode``: every aten op that runs while it is active (forward *and* backward: the
autograd engine carries the mode to its threads) reports its outputs; each new storage is an allocation, and a finalizer on
the storage records when it is freed. The peak of the running sum of live bytes is the extra
memory the code needed. Views share their base's storage and are counted once.

What it cannot see: scratch buffers that a kernel allocates and frees inside one op (not an
output), and memory outside PyTorch. Tensors that exist before it starts (inputs, weights) are
not counted. ``report(exclude=...)`` leaves out named tensors, e.g. the inputs'
gradients, which every method under comparison has to produce.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


@dataclass
class Allocation:
    op: str
    nbytes: int
    freed: bool = False


@dataclass
class MemoryReport:
    """Bytes of the storages created while tracking (``excluded`` ones left out of the others)."""

    peak_bytes: int
    allocated_bytes: int
    excluded_bytes: int
    allocations: int
    largest: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "peak_bytes": self.peak_bytes, "peak_mib": round(self.peak_bytes / 2**20, 4),
            "allocated_bytes": self.allocated_bytes, "excluded_bytes": self.excluded_bytes,
            "allocations": self.allocations, "largest": self.largest,
        }


class AllocationTimeline(TorchDispatchMode):
    """Records, in order, every storage that an op creates and the moment it is freed."""

    def __init__(self):
        super().__init__()
        self.allocations: list[Allocation] = []
        self.events: list[tuple[int, int]] = []  # (allocation index, +1 created / -1 freed)
        self._by_storage: dict[int, int] = {}  # id of a live storage object -> allocation index

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Views and in-place results share an input's storage: no new memory (even when that
        # input existed before tracking began, e.g. ``weight.t()``).
        inputs = {s.data_ptr() for s in _storages(tree_flatten((args, kwargs))[0])}
        for storage in _storages(tree_flatten(out)[0]):
            if storage.data_ptr() not in inputs:
                self._record(storage, str(func.overloadpacket.__name__))
        return out

    def _record(self, storage, op: str) -> None:
        if storage.nbytes() == 0 or id(storage) in self._by_storage:
            return
        index = len(self.allocations)
        self.allocations.append(Allocation(op, storage.nbytes()))
        self.events.append((index, +1))
        self._by_storage[id(storage)] = index
        # Storage Python objects live exactly as long as the memory, so this fires on the free.
        weakref.finalize(storage, self._freed, id(storage), index)

    def _freed(self, storage_id: int, index: int) -> None:
        self._by_storage.pop(storage_id, None)
        self.allocations[index].freed = True
        self.events.append((index, -1))

    def index_of(self, tensor: torch.Tensor | None) -> int | None:
        """The allocation that holds ``tensor``'s memory, if it was created while tracking."""
        if tensor is None:
            return None
        return self._by_storage.get(id(tensor.untyped_storage()))

    def report(self, exclude: list[torch.Tensor | None] = ()) -> MemoryReport:
        """Peak live bytes over the recorded timeline, leaving out the storages of ``exclude``."""
        skipped = {i for i in (self.index_of(t) for t in exclude) if i is not None}
        live = peak = 0
        for index, sign in self.events:
            if index not in skipped:
                live += sign * self.allocations[index].nbytes
                peak = max(peak, live)
        kept = [(i, a) for i, a in enumerate(self.allocations) if i not in skipped]
        largest = sorted(kept, key=lambda item: -item[1].nbytes)[:5]
        return MemoryReport(
            peak_bytes=peak, allocated_bytes=sum(a.nbytes for _, a in kept),
            excluded_bytes=sum(self.allocations[i].nbytes for i in skipped), allocations=len(kept),
            largest=[{"op": a.op, "bytes": a.nbytes} for _, a in largest],
        )


def _storages(values) -> list:
    """The storages holding the memory of the tensors among ``values`` (sparse ones: indices and values)."""
    out = []
    for value in values:
        if not isinstance(value, torch.Tensor) or value.device.type == "meta":
            continue
        if value.layout == torch.sparse_coo:
            out += _storages([value._indices(), value._values()])
        elif value.layout == torch.strided:
            out.append(value.untyped_storage())
    return out


def tensor_bytes(*tensors: torch.Tensor) -> int:
    """Bytes held by the given tensors' storages (each storage once)."""
    seen, total = set(), 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if id(storage) not in seen:
            seen.add(id(storage))
            total += storage.nbytes()
    return total

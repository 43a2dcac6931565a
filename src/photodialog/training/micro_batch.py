"""``train.micro_batch_size=auto``: the micro-batch chosen from free memory (CUDA) or by a fixed rule (CPU).

The micro-batch is always a divisor of the per-process batch (``train.batch_size`` / processes),
so that gradient accumulation reaches the effective batch exactly.

* **CUDA**: two probe steps (forward + backward, no optimizer step) on the longest samples of a
  seeded draw of the training set, at 1 and 2 samples, give the peak memory as
  ``fixed + per_sample x m``. The choice is the largest divisor ``m`` with
  ``fixed + per_sample x m + optimizer state <= free x 0.9 - 1 GiB``, ``free`` measured with the
  model already on the GPU (optimizer state: AdamW's two float32 moments per trainable parameter,
  not yet allocated at the probe; the 10% and 1 GiB leave room for fragmentation and longer batches).
  The probe leaves the weights and every random stream as they were.
* **CPU**: the largest divisor not above ``CPU_MAX`` (16): host memory is not the limit at the
  sizes a CPU trains, and past about 16 samples a bigger micro-batch does not use the cores better.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from photodialog.errors import UserError

CPU_MAX = 16
PROBE_DRAW = 256  # samples drawn to find the longest ones
MARGIN_FRACTION, MARGIN_BYTES = 0.10, 2**30


@dataclass
class MicroBatchChoice:
    """The micro-batch size chosen for ``train.micro_batch_size=auto``, the rule that chose it, and its numbers."""

    size: int
    rule: str
    details: dict


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` in increasing order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def choose_on_cpu(per_process: int) -> MicroBatchChoice:
    """The largest divisor of the per-process batch not above ``CPU_MAX`` (memory is not the limit on a CPU)."""
    size = max(d for d in divisors(per_process) if d <= CPU_MAX)
    return MicroBatchChoice(size, f"CPU: the largest divisor of the per-process batch ({per_process}) not above {CPU_MAX}", {})


def fit(per_process: int, *, free: int, fixed: int, per_sample: int, optimizer_state: int) -> int:
    """The largest divisor of ``per_process`` whose estimated peak fits in ``free`` (see module doc); at least 1."""
    budget = free * (1 - MARGIN_FRACTION) - MARGIN_BYTES - optimizer_state
    fitting = [d for d in divisors(per_process) if fixed + per_sample * d <= budget]
    return max(fitting) if fitting else 1


def probe_peak(model, make_batch, samples: list, size: int, device, run_step) -> int:
    """Peak bytes above what was held, of one forward + backward on ``size`` of ``samples``."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    batch = make_batch(samples[:size]).to(device)
    run_step(batch)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    for p in model.parameters():
        p.grad = None
    torch.cuda.empty_cache()
    return int(peak)


def choose_on_cuda(model, make_batch, dataset, per_process: int, device, run_step, seed: int = 0) -> MicroBatchChoice:
    """Probe two small steps and fit the largest micro-batch in free memory (module doc)."""
    draw = random.Random(seed).sample(range(len(dataset)), min(PROBE_DRAW, len(dataset)))
    longest = sorted(draw, key=lambda i: -len(getattr(dataset[i], "input_ids", [])))[:2]
    samples = [dataset[i] for i in longest]
    states = _random_states()
    try:
        one = probe_peak(model, make_batch, samples, 1, device, run_step)
        two = probe_peak(model, make_batch, samples, 2, device, run_step) if len(samples) > 1 else 2 * one
    finally:
        _restore_random_states(states)
    per_sample, fixed = max(two - one, 1), max(2 * one - two, 0)
    free, total = torch.cuda.mem_get_info(device)
    optimizer_state = 8 * sum(p.numel() for p in model.parameters() if p.requires_grad)
    size = fit(per_process, free=free, fixed=fixed, per_sample=per_sample, optimizer_state=optimizer_state)
    details = {"free_bytes": int(free), "total_bytes": int(total), "fixed_bytes": fixed, "per_sample_bytes": per_sample,
               "optimizer_state_bytes": optimizer_state, "probe_sample_tokens": [len(getattr(s, "input_ids", [])) for s in samples]}
    return MicroBatchChoice(size, "CUDA: the largest divisor whose probed peak fits in free memory", details)


def _random_states() -> dict:
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all(), "python": random.getstate()}


def _restore_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    torch.cuda.set_rng_state_all(states["cuda"])
    random.setstate(states["python"])


def fixed_micro_batch(config, processes: int = 1) -> int:
    """``train.micro_batch_size`` as a number: itself, or for ``auto`` the CPU rule (``choose_on_cpu``)."""
    micro, batch = config.train.micro_batch_size, config.train.batch_size
    if micro != "auto":
        return micro
    if batch % processes:
        raise UserError(f"train.batch_size ({batch}) must be a multiple of the number of processes ({processes}) "
                        "for train.micro_batch_size=auto")
    return choose_on_cpu(batch // processes).size

"""``photodialog bench step --profile``: where one training step's time goes, as JSON.

The step is the benchmarks' ``TrainStep`` preceded by building its micro-batch (``data``).
``torch.profiler`` records a few steps after warmup; the ranges that
``photodialog.models.profiling.part`` opens in the model code (``llm``, ``perceptron``,
``stgs``, ``bridge``, ``text_encoder``, ``vae_encode``, ``unet``, ``diffusion_loss``) and in
``TrainStep`` (``forward``, ``backward``, ``grad_clip``, ``optimizer``, ``zero_grad``) name
the items:

* a part's **forward** time is the time inside its ranges, less the nested labelled ranges
  (``diffusion_loss`` holds ``vae_encode`` and ``unet``; what is left is noise, timesteps and MSE);
* a part's **backward** time is the time of the autograd nodes created by the forward ops that
  ran inside its ranges (the profiler links a backward node to its forward op by sequence
  number); with gradient checkpointing the recomputed forward lands in the backward of its part;
* ``forward (other)`` and ``backward (other)``: the rest of the forward (embedding lookup,
  photo splicing, gathering caption logits) and the backward nodes of those ops.

On a CPU the times are the wall time of the ranges (one thread runs everything). On CUDA they
are the GPU kernel time launched from the ranges; ``GPU idle`` is the step's wall time less all
kernel time (launch overhead, host work, waiting on the host). Shares are of the profiled step's
wall time. **Host syncs** (a value read back to the host: ``.item()``, ``int(tensor)``, and on
CUDA ``cudaStreamSynchronize`` and device-to-host copies such as ``.tolist()``) are counted with
where they happen; their time is already inside the items and is not added again.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from photodialog.bench import tiny_setup
from photodialog.bench.machine import describe_machine, load_average
from photodialog.bench.step import TrainStep, batch_summary, model_summary
from photodialog.bench.timing import measure, synchronize
from photodialog.models.profiling import PREFIX, part

PART_LABELS = {
    "llm": "LLM: decoder layers, LM head on response positions, cross-entropy L_t (Eq. 2)",
    "perceptron": "ViT + Q-Former + projection of the context photos (Eq. 3)",
    "stgs": "straight-through Gumbel-softmax on the caption logits (Eq. 4-7)",
    "bridge": "vocabulary bridge: plan (host) and R_SD @ E (Eq. 8-11)",
    "text_encoder": "CLIP text encoder on the bridged embeddings",
    "vae_encode": "VAE encoder of the target photos (frozen: no backward)",
    "unet": "UNet noise prediction",
    "diffusion_loss": "L_v (Eq. 12) less VAE and UNet: noise, timesteps, add_noise, MSE",
}
PHASE_LABELS = {
    "data": "building the micro-batch: collate, photo tensors, copy to the device",
    "forward": "forward outside the labelled parts (embeddings, splicing photo embeddings, caption rows)",
    "backward": "backward outside the labelled parts (autograd engine, nodes of unlabelled forward ops)",
    "grad_clip": "gradient norm clipping",
    "optimizer": "AdamW step",
    "zero_grad": "zero_grad(set_to_none=True)",
}
SYNC_OPS = ("aten::_local_scalar_dense", "cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
BACKWARD_NODE = "autograd::engine::evaluate_function: "
METHOD = " ".join(__doc__.split("\n\n", 1)[1].split())  # the module doc after its title: stored in every result


def profiled_call(step, make_batch: Callable[[], object]) -> Callable[[], object]:
    """One step as the profile sees it: build the micro-batch (``data``), then ``step()``."""

    def call():
        with part("data"):
            step.batch = make_batch()
        return step()

    return call


def profile_step(call: Callable[[], object], *, steps: int, warmup: int, device) -> dict:
    """Profile ``steps`` calls after ``warmup`` untimed ones; the breakdown per step (see module doc)."""
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        call()
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    walls = []
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(max(steps, 1)):
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            walls.append(time.perf_counter() - start)
    return breakdown(prof.events(), walls, cuda=cuda)


def host_events(events) -> list:
    """The host-side events: ops, ranges, runtime calls (with their kernels attached). On CUDA the
    profiler also lists the kernels and a device-side copy of every range as events of their own;
    counted too, they would add each range's GPU span to its kernels' time."""
    return [e for e in events if e.device_type == torch.autograd.DeviceType.CPU]


def _label(event) -> str | None:
    """The innermost ``photodialog::`` range that holds ``event`` (itself excluded)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(PREFIX):
            return parent.name[len(PREFIX):]
        parent = parent.cpu_parent
    return None


def _inside_backward_node(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(BACKWARD_NODE):
            return True
        parent = parent.cpu_parent
    return False


def breakdown(events, walls: list[float], *, cuda: bool) -> dict:
    """Per-step milliseconds of each item from the profiler's events (see module doc)."""
    steps = len(walls)

    def took(event) -> float:  # microseconds
        return event.device_time_total if cuda else event.cpu_time_total

    exclusive: dict[str, float] = defaultdict(float)  # label -> us, nested labelled ranges removed
    label_of_op: dict[tuple[int, int], str] = {}
    nodes = []
    for event in host_events(events):
        name = event.name
        if name.startswith(PREFIX):
            label = name[len(PREFIX):]
            exclusive[label] += took(event)
            outer = _label(event)
            if outer is not None:
                exclusive[outer] -= took(event)
        elif name.startswith(BACKWARD_NODE):
            if not _inside_backward_node(event):
                nodes.append(event)
        elif event.sequence_nr >= 0:
            label = _label(event)
            if label is not None:
                label_of_op.setdefault((event.thread, event.sequence_nr), label)
    backward: dict[str, float] = defaultdict(float)
    for node in nodes:
        label = label_of_op.get((node.fwd_thread, node.sequence_nr))
        part_name = label if label in PART_LABELS else "other"
        backward[part_name] += took(node)
        holder = _label(node)
        if holder is not None:  # on a CPU the nodes run inside the ``backward`` range: not counted twice
            exclusive[holder] -= took(node)
    wall_ms = 1000 * sum(walls) / steps
    items = []

    def add(name: str, kind: str, label: str, phase: str, us: float, what: str) -> None:
        ms = us / 1000 / steps
        if abs(ms) >= 0.0005:
            items.append({"item": name, "part": label, "phase": phase, "ms": round(ms, 3), "share": round(ms / wall_ms, 4),
                          "kind": kind, "what": what})

    for label, what in PART_LABELS.items():
        add(f"{label} forward", "part", label, "forward", exclusive.get(label, 0.0), what)
        add(f"{label} backward", "part", label, "backward", backward.get(label, 0.0), what)
    for label, what in PHASE_LABELS.items():
        us = exclusive.get(label, 0.0) + (backward.get("other", 0.0) if label == "backward" else 0.0)
        add(f"{label} (other)" if label in ("forward", "backward") else label, "phase", label, label, us, what)
    counted = sum(i["ms"] for i in items)
    rest = wall_ms - counted
    if cuda:
        add("GPU idle", "gap", "", "", rest * 1000 * steps, "step wall time with no kernel running: launches, host work, syncs")
    else:
        add("unlabelled", "gap", "", "", rest * 1000 * steps, "step wall time outside every range (the harness, Python between ranges)")
    items.sort(key=lambda i: -i["ms"])
    return {
        "time_basis": "CUDA kernel time per range; shares of the step's wall time" if cuda else
                      "CPU wall time per range; shares of the step's wall time",
        "profiled_steps": steps, "profiled_step_ms": round(wall_ms, 3),
        "items": items, "host_syncs": host_syncs(events, steps, cuda=cuda),
    }


def host_syncs(events, steps: int, *, cuda: bool) -> dict:
    """Reads back to the host per step, by the range they happen in.

    ``scalar_reads``: ``aten::_local_scalar_dense`` (``.item()``, ``int(t)``, ``bool(t)``); each one
    waits for the GPU when its tensor lives there. AdamW's single-tensor implementation (the CPU
    default) reads its per-parameter step counters this way: CPU tensors, so no GPU wait.
    ``device_syncs`` (CUDA only): the runtime's synchronize calls and device-to-host copies.
    """
    scalar: Counter = Counter()
    device: Counter = Counter()
    device_us = 0.0
    for event in host_events(events):
        label = _label(event)
        if label is None:  # the harness's own synchronize between steps
            continue
        if event.name == SYNC_OPS[0]:
            scalar[label] += 1
        copies = [k for k in getattr(event, "kernels", []) if "DtoH" in getattr(k, "name", "")]
        if event.name in SYNC_OPS[1:] or copies:
            device[label] += 1
            device_us += event.cpu_time_total
    per_step = lambda counts: {k: round(v / steps, 2) for k, v in counts.most_common()}  # noqa: E731
    return {
        "scalar_reads_per_step": round(sum(scalar.values()) / steps, 2), "scalar_reads_by_range": per_step(scalar),
        "device_syncs_per_step": round(sum(device.values()) / steps, 2) if cuda else None,
        "device_syncs_by_range": per_step(device) if cuda else None,
        "device_sync_cpu_ms_per_step": round(device_us / 1000 / steps, 3) if cuda else None,
        "note": "counted where they happen; their time is already inside the items (not added). A device sync leaves the "
                "GPU idle while the host catches up; on a CPU a scalar read costs nothing but marks a place that waits on a GPU "
                "when its tensor lives there",
    }


def top_lines(result: dict, count: int = 8) -> list[str]:
    lines = [f"profiled step {result['profiled_step_ms']:.1f} ms ({result['time_basis']}):"]
    for item in result["items"][:count]:
        lines.append(f"  {item['item']:<26} {item['ms']:>10.2f} ms  {100 * item['share']:5.1f}%")
    syncs = result["host_syncs"]
    lines.append(f"  scalar reads per step: {syncs['scalar_reads_per_step']} {syncs['scalar_reads_by_range']}")
    if syncs["device_syncs_per_step"] is not None:
        lines.append(f"  device syncs per step: {syncs['device_syncs_per_step']} {syncs['device_syncs_by_range']}")
    return lines


def run_tiny_profile(settings) -> dict:
    """The tiny end-to-end system (``tiny-e2e``) profiled on CPU or CUDA; ``settings``: a StepBenchSettings."""
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    with tempfile.TemporaryDirectory(prefix="photodialog-bench-") as tmp:
        setup = tiny_setup.prepare(Path(tmp) / "run", settings.data)
        system = tiny_setup.build(setup, settings.overrides)
        make_batch = tiny_setup.batch_maker(system, setup, settings.batch_size, seed=system.config.train.seed)
        step = TrainStep(system.model, system.config, make_batch(), settings.tau, settings.device)
        call = profiled_call(step, make_batch)
        timing = measure(call, repeats=settings.steps, warmup=settings.warmup, device=settings.device)
        profile = profile_step(call, steps=settings.steps, warmup=0, device=settings.device)
        batch = step.batch
    return {
        "benchmark": "step-profile", "preset": "tiny", "machine": machine, "settings": asdict(settings),
        "batch": batch_summary(batch), "model": model_summary(system.config),
        "step_ms_unprofiled": timing.to_dict(), **profile, "method": METHOD,
        "load_average_at_end": load_average(), "wall_seconds": round(time.perf_counter() - started, 2),
    }


def summary_lines(result: dict) -> list[str]:
    return [f"training step profile, preset {result['preset']} ({result['machine']['device']}, "
            f"{result['machine']['torch_threads']} threads); unprofiled step {result['step_ms_unprofiled']['median_ms']:.1f} ms median",
            *top_lines(result), f"took {result['wall_seconds']} s"]

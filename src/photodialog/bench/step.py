"""``photodialog bench step``: one training step of the end-to-end model against the pipeline.

Both systems are the ``tiny-e2e`` recipe's, built from the same base parts and seed (identical
weights); the pipeline setting differs only in ``model.bridge=none``, so ``L_v`` reaches the
diffusion model but not the LLM. Both train on the same fixed micro-batch. A step is what the
trainer does per micro-batch when it also steps the optimizer: forward (``L_t + alpha L_v``),
backward, gradient clipping, AdamW step, ``zero_grad``. Batches are built beforehand (data
loading is not timed). Steps of the two settings alternate, so that a change of load on a
shared machine hits both alike.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from photodialog.bench import tiny_setup
from photodialog.bench.machine import describe_machine, load_average
from photodialog.bench.memory import AllocationTimeline, tensor_bytes
from photodialog.bench.results import mib, ms, verdict
from photodialog.bench.timing import measure, measure_interleaved
from photodialog.models.profiling import part

RATIO_TARGET = 1.10  # end-to-end step time at most 10% above the pipeline's


@dataclass
class StepBenchSettings:
    data: str | None = None
    """A world or dataset folder; by default a 60-dialogue synthetic world in a temporary folder."""
    batch_size: int = 16
    steps: int = 5
    warmup: int = 2
    tau: float = 1.0
    overrides: list[str] = field(default_factory=list)
    device: str = "cpu"


class TrainStep:
    """One optimizer step of a model on a fixed batch, with the run config's optimizer settings
    (callable, for the timers); ``autocast`` runs the forward in that dtype, as mixed precision does."""

    def __init__(self, model, config, batch, tau: float, device, autocast: torch.dtype | None = None, *, fused: bool = True):
        self.device = torch.device(device)
        self.model, self.config, self.autocast = model.to(self.device), config, autocast
        self.batch, self.tau = batch.to(self.device), tau
        self.optimizer = tiny_setup.optimizer_for(self.model, self.config, self.device, fused=fused)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def __call__(self):
        self.model.train()
        precision = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext()
        with part("forward"), precision:
            out = self.model(self.batch, tau=self.tau, alpha=self.config.train.alpha, text_weight=self.config.train.text_loss_weight)
        with part("backward"):
            out.loss.backward()
        if self.config.train.grad_clip > 0:
            with part("grad_clip"):
                torch.nn.utils.clip_grad_norm_(self.params, self.config.train.grad_clip)
        with part("optimizer"):
            self.optimizer.step()
        with part("zero_grad"):
            self.optimizer.zero_grad(set_to_none=True)
        return out

    def static_bytes(self) -> dict:
        """Memory held between steps: weights and optimizer state."""
        weights = tensor_bytes(*self.model.parameters())
        state = [t for s in self.optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor) and t.numel() > 1]
        return {"weights_bytes": weights, "optimizer_state_bytes": tensor_bytes(*state) if state else 0}

    def peak_step_bytes(self) -> dict:
        """Peak bytes allocated during one step (activations, gradients, temporaries)."""
        with AllocationTimeline() as timeline:
            out = self()
        report = timeline.report()
        return {**report.to_dict(), "image_targets": out.stats.get("image_targets", 0), "unbridged_captions": out.stats.get("unbridged_captions", 0)}


def model_summary(config) -> dict:
    """The tiny preset's sizes and the recipe settings that shape a step's cost."""
    model = config.model
    return {"recipe": tiny_setup.RECIPE, "tiny": asdict(model.tiny), "image_loss_repeats": model.image_loss_repeats,
            "trainable": asdict(model.trainable), "bridge": model.bridge}


def batch_summary(batch) -> dict:
    return {"samples": batch.size, "sequence_length": int(batch.input_ids.shape[1]), "tokens": int(batch.attention_mask.sum()),
            "context_photos": int(batch.context_pixels.shape[0]), "captions": len(batch.captions),
            "target_photos": 0 if batch.target_pixels is None else int(batch.target_pixels.shape[0])}


def build_pair(settings: StepBenchSettings, run_dir: Path):
    """End-to-end and pipeline steps with identical weights and batch."""
    setup = tiny_setup.prepare(run_dir, settings.data)
    e2e = tiny_setup.build(setup, settings.overrides)
    pipeline = tiny_setup.build(setup, [*settings.overrides, "model.bridge=none"])
    batch = tiny_setup.fixed_batch(e2e, setup, settings.batch_size, seed=e2e.config.train.seed)
    steps = [TrainStep(system.model, system.config, batch, settings.tau, settings.device) for system in (e2e, pipeline)]
    return steps[0], steps[1], batch


def run_step_bench(settings: StepBenchSettings) -> dict:
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    with tempfile.TemporaryDirectory(prefix="photodialog-bench-") as tmp:
        e2e, pipeline, batch = build_pair(settings, Path(tmp) / "run")
        timings = measure_interleaved({"end_to_end": e2e, "pipeline": pipeline}, repeats=settings.steps, warmup=settings.warmup, device=settings.device)
        memory = {"end_to_end": {**e2e.peak_step_bytes(), **e2e.static_bytes()},
                  "pipeline": {**pipeline.peak_step_bytes(), **pipeline.static_bytes()}}
    ratio = timings["end_to_end"].median_ms / timings["pipeline"].median_ms
    memory_ratio = memory["end_to_end"]["peak_bytes"] / max(memory["pipeline"]["peak_bytes"], 1)
    return {
        "benchmark": "step", "preset": "tiny", "machine": machine, "settings": asdict(settings), "batch": batch_summary(batch),
        "model": model_summary(e2e.config),
        "end_to_end": {"time": timings["end_to_end"].to_dict(), "memory": memory["end_to_end"]},
        "pipeline": {"time": timings["pipeline"].to_dict(), "memory": memory["pipeline"]},
        "time_ratio_end_to_end_over_pipeline": round(ratio, 4),
        "peak_step_memory_ratio_end_to_end_over_pipeline": round(memory_ratio, 4),
        "targets": {"time_ratio": {"value": round(ratio, 4), "limit": RATIO_TARGET, "met": ratio <= RATIO_TARGET}},
        "load_average_at_end": load_average(), "wall_seconds": round(time.perf_counter() - started, 2),
    }


def tiny_step_timing(repeats: int = 3, batch_size: int = 16, device: str = "cpu") -> dict:
    """Median time of a tiny end-to-end training step (the yardstick of the bridge benchmark)."""
    with tempfile.TemporaryDirectory(prefix="photodialog-bench-") as tmp:
        setup = tiny_setup.prepare(Path(tmp) / "run", None)
        system = tiny_setup.build(setup)
        batch = tiny_setup.fixed_batch(system, setup, batch_size, seed=system.config.train.seed)
        step = TrainStep(system.model, system.config, batch, 1.0, device)
        timing = measure(step, repeats=repeats, warmup=1, device=device)
    return {"time": timing.to_dict(), "batch": batch_summary(batch), "model": model_summary(system.config)}


def summary_lines(result: dict) -> list[str]:
    e2e, pipe = result["end_to_end"], result["pipeline"]
    b = result["batch"]
    check = result["targets"]["time_ratio"]
    return [
        f"training step, preset {result['preset']} ({result['machine']['device']}, {result['machine']['torch_threads']} threads): "
        f"{b['samples']} samples, {b['tokens']} tokens, {b['target_photos']} target photos",
        f"end-to-end: {ms(e2e['time']['median_ms'])} median, peak step memory {mib(e2e['memory']['peak_bytes'])}",
        f"pipeline:   {ms(pipe['time']['median_ms'])} median, peak step memory {mib(pipe['memory']['peak_bytes'])}",
        f"end-to-end / pipeline: time {result['time_ratio_end_to_end_over_pipeline']}x (target <= {check['limit']}: {verdict(check)}), "
        f"peak step memory {result['peak_step_memory_ratio_end_to_end_over_pipeline']}x",
        f"took {result['wall_seconds']} s",
    ]

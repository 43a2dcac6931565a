"""``photodialog bench bridge``: the vocabulary bridge at the paper's sizes against the paper's way.

Inputs (the same for every method): a straight-through sample over |V_LLM| = 32,002 for
``captions`` x ``caption_tokens`` caption positions (its soft part a leaf that collects the
gradient), the CLIP token embedding E (|V_SD| = 49,408 x ``width``) and a gradient for the
text encoder's input. Each method computes ``R_SD @ E`` [C, 77, width] and the gradients of
the soft sample (and of E when ``train_text_encoder``):

* ``bridge``: ``VocabularyBridge.inputs_embeds`` (gather + embedding_bag), plan built beforehand;
* ``sparse_coo``: a ``torch.sparse_coo`` M per caption (built beforehand), ``R_LLM @ M``, pooling,
  Eq. 11 with the n x |V_SD| one-hots, ``@ E`` (the paper's implementation);
* ``dense``: the same with a dense M, run only when all the matrices fit in memory;
* ``pipeline_lookup``: ``E[ids]`` alone, what the pipeline pays anyway (no gradient to the LLM).

Memory is the peak of the bytes the method's ops allocate (``memory.AllocationTimeline``),
leaving out its output and the input gradients, which every method has to produce.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from photodialog.bench.machine import available_memory_bytes, describe_machine, load_average
from photodialog.bench.memory import AllocationTimeline, tensor_bytes
from photodialog.bench.reference import dense_matrix, matrix_inputs_embeds, matrix_nonzeros, sparse_matrices
from photodialog.bench.results import mib, ms, verdict
from photodialog.bench.step import tiny_step_timing
from photodialog.bench.timing import Timing, measure, time_call
from photodialog.bench.vocab import VocabularySizes, llm_tokenizer, sd_tokenizer, synthetic_captions
from photodialog.models.bridge import BridgePlan, VocabularyBridge
from photodialog.models.stgs import STGSSample

MEMORY_TARGET_BYTES = 2**20  # 1 MiB
STEP_SHARE_TARGET = 0.01  # bridge time under 1% of a tiny training step
SPEEDUP_TARGET = 10.0  # at least 10x faster than the sparse-COO product
DENSE_MEMORY_SHARE = 0.5  # run the dense matrices only if they need under half the free memory
MEMORY_METHOD = (
    "peak of the live bytes of the storages created by the aten ops of one forward+backward "
    "(TorchDispatchMode + storage finalizers), leaving out the method's output and the input "
    "gradients; extra_bytes adds the index tensors the method holds (plan or sparse matrices)"
)


@dataclass
class BridgeBenchSettings:
    modes: list[str] = field(default_factory=lambda: ["sentence", "word", "exact"])
    captions: int = 32
    caption_tokens: int = 20
    width: int = 1024
    vocab: VocabularySizes = field(default_factory=VocabularySizes)
    pooling: str = "mean"
    train_text_encoder: bool = False
    """The paper's recipe freezes the text encoder, so E gets no gradient by default."""
    repeats: int = 7
    warmup: int = 1
    max_seconds: float = 5.0
    """Stop timing a method early once its timed runs took this long (the exact mode is slow)."""
    baseline_repeats: int = 0
    """Extra timed runs of the slow baselines; their first timing is the run that tracks their memory."""
    dense: str = "auto"
    """``auto``: run the dense matrices when they fit in memory, else report their size; ``skip``."""
    tiny_step: bool = True
    """Also time a tiny training step here, for the 'under 1% of a step' target."""
    step_repeats: int = 3
    device: str = "cpu"
    seed: int = 0


@dataclass
class BridgeInputs:
    captions: list
    sample: STGSSample
    embedding: torch.Tensor
    grad_output: torch.Tensor
    llm: object
    sd: object

    def differentiable(self) -> list[torch.Tensor]:
        return [self.sample.soft] + ([self.embedding] if self.embedding.requires_grad else [])


def make_inputs(settings: BridgeBenchSettings) -> BridgeInputs:
    torch.manual_seed(settings.seed)
    device, sizes = torch.device(settings.device), settings.vocab
    llm, sd = llm_tokenizer(sizes), sd_tokenizer(sizes)
    captions = synthetic_captions(llm, settings.captions, settings.caption_tokens, seed=settings.seed)
    rows = sum(len(c.rows) for c in captions)
    soft = torch.softmax(torch.randn(rows, sizes.llm_vocab, device=device), dim=-1).requires_grad_()
    tokens = torch.tensor([t for c in captions for t in c.llm_ids], dtype=torch.long, device=device)
    embedding = (torch.randn(sizes.sd_vocab, settings.width, device=device) * 0.02).requires_grad_(settings.train_text_encoder)
    grad_output = torch.randn(settings.captions, sizes.sd_max_length, settings.width, device=device)
    return BridgeInputs(captions, STGSSample(tokens=tokens, soft=soft), embedding, grad_output, llm, sd)


def forward_backward(method, inputs: BridgeInputs):
    """The method's output and the gradients of the inputs that need one."""
    output = method()
    wanted = inputs.differentiable()
    return output, torch.autograd.grad(output, wanted, inputs.grad_output) if output.requires_grad else ()


def tracked_run(method, inputs: BridgeInputs, device=None):
    """One run under the allocation timeline: (output, gradients, memory report, seconds).

    The tracker adds a Python call per op (about 1,500 ops for the sparse-COO baseline, well
    under 1% of its time), so the slow baselines use this run as a timing too.
    """
    results = []
    with AllocationTimeline() as timeline:
        seconds = time_call(lambda: results.append(forward_backward(method, inputs)), device)
    output, grads = results[0]
    return output, grads, timeline.report(exclude=[output, *grads]), seconds


def plan_bytes(plan: BridgePlan, bridge: VocabularyBridge) -> int:
    """Bytes of the plan's index tensors (and of Eq. 8's pairs for ``exact``): memory the bridge holds."""
    tensors = [v for v in vars(plan).values() if isinstance(v, torch.Tensor) and v.numel()]
    if bridge.static_pairs is not None:
        tensors += list(bridge.static_pairs)
    return tensor_bytes(*tensors) if tensors else 0


def agreement(reference, other) -> dict:
    """Largest absolute differences of outputs and gradients between two methods (should be ~0)."""
    (out_a, grads_a), (out_b, grads_b) = reference, other
    largest = lambda t: float(t.detach().float().abs().max())  # noqa: E731
    result = {"output_max_abs_diff": largest(out_a - out_b)}
    for name, a, b in zip(["soft_grad", "embedding_grad"], grads_a, grads_b):
        result[f"{name}_max_abs_diff"] = largest(a - b)
        result[f"{name}_max_abs"] = largest(a)
    return result


def dense_plan(settings: BridgeBenchSettings) -> dict:
    """Size of the dense matrices and whether they fit in (half of) the free memory here."""
    sizes = settings.vocab
    per_caption = sizes.llm_vocab * sizes.sd_vocab * 4
    needed = per_caption * settings.captions  # autograd keeps every caption's M for the backward pass
    free = available_memory_bytes(settings.device)
    fits = free is not None and needed < DENSE_MEMORY_SHARE * free
    return {
        "matrix_bytes_per_caption_float32": per_caption, "matrix_bytes_per_caption_bfloat16": per_caption // 2,
        "batch_bytes_float32": needed, "available_bytes": free,
        "ran": settings.dense != "skip" and fits,
        "reason": "skipped (--dense skip)" if settings.dense == "skip" else
        ("fits" if fits else f"needs {needed / 2**30:.1f} GiB, more than {DENSE_MEMORY_SHARE:.0%} of the {0 if free is None else free / 2**30:.1f} GiB free"),
    }


def method_result(timing, report, setup_ms: float, held_bytes: int) -> dict:
    return {"time": timing.to_dict(), "memory": report.to_dict(), "setup_ms": round(setup_ms, 3), "held_bytes": held_bytes,
            "extra_bytes": report.peak_bytes + held_bytes}


def bench_mode(mode: str, inputs: BridgeInputs, settings: BridgeBenchSettings) -> dict:
    """Bridge, sparse-COO and (where it fits) dense for one bridge mode."""
    started = time.perf_counter()
    bridge = VocabularyBridge(mode, inputs.llm, inputs.sd, pooling=settings.pooling)
    construct_ms = (time.perf_counter() - started) * 1000
    plan_timing = measure(lambda: bridge.plan(inputs.captions), repeats=3, warmup=0)
    plan = bridge.plan(inputs.captions).to(settings.device)
    result, reference = _bridge_run(bridge, plan, inputs, settings)
    result["bridge"]["setup_ms"] = round(plan_timing.median_ms, 3)
    result.update(bridge_construction_ms=round(construct_ms, 3), unbridged_captions=plan.unbridged)
    nonzeros = [matrix_nonzeros(bridge, c) for c in inputs.captions]
    result["sparse_coo"] = _sparse_run(mode, nonzeros, plan, inputs, settings, reference)
    result["dense"] = dense_plan(settings)
    if result["dense"]["ran"]:
        result["dense"].update(_dense_run(nonzeros, plan, inputs, settings, reference))
    bridge_ms = result["bridge"]["time"]["median_ms"]
    result["speedup_vs_sparse_coo"] = _ratio(result["sparse_coo"]["time"]["median_ms"], bridge_ms)
    if result["dense"]["ran"]:
        result["speedup_vs_dense"] = _ratio(result["dense"]["time"]["median_ms"], bridge_ms)
    return result


def _bridge_run(bridge, plan, inputs, settings):
    """The bridge's result, and its (output, gradients) as the reference for the baselines."""
    def run_bridge():
        return bridge.inputs_embeds(plan, inputs.sample, inputs.embedding)

    out, grads, report, seconds = tracked_run(run_bridge, inputs, settings.device)
    warmup = settings.warmup if seconds < 1.0 else 0  # a slow first run has warmed the caches already
    timing = measure(lambda: forward_backward(run_bridge, inputs), repeats=settings.repeats, warmup=warmup,
                     device=settings.device, max_seconds=settings.max_seconds)
    return {"bridge": method_result(timing, report, 0.0, plan_bytes(plan, bridge))}, (out, grads)


def _sparse_run(mode, nonzeros, plan, inputs, settings, reference) -> dict:
    """The paper's sparse-COO matrices, built before timing (like the bridge's plan)."""
    shape = (settings.vocab.llm_vocab, settings.vocab.sd_vocab)
    started = time.perf_counter()
    matrices = sparse_matrices(nonzeros[:1] if mode == "exact" else nonzeros, shape, settings.device)
    matrices = matrices * len(nonzeros) if mode == "exact" else matrices  # Eq. 8's M is one static matrix
    setup_ms = (time.perf_counter() - started) * 1000

    def run_sparse():
        return matrix_inputs_embeds(matrices, inputs.captions, plan.sd_input_ids, inputs.sample, inputs.embedding, pooling=settings.pooling)

    out, grads, report, seconds = tracked_run(run_sparse, inputs, settings.device)
    distinct = matrices[:1] if mode == "exact" else matrices
    held = tensor_bytes(*[t for m in distinct for t in (m._indices(), m._values())])
    result = method_result(_baseline_timing(run_sparse, inputs, settings, seconds), report, setup_ms, held)
    result["nonzeros_per_caption"] = round(sum(len(k) for k, _ in nonzeros) / max(len(nonzeros), 1), 1)
    result["agreement_with_bridge"] = agreement(reference, (out, grads))
    return result


def _dense_run(nonzeros, plan, inputs, settings, reference) -> dict:
    """Dense matrices, each built when its caption needs it (autograd keeps them all for backward)."""
    shape = (settings.vocab.llm_vocab, settings.vocab.sd_vocab)

    def run_dense():
        build = lambda index: dense_matrix(nonzeros[index], shape, settings.device)  # noqa: E731
        return matrix_inputs_embeds(build, inputs.captions, plan.sd_input_ids, inputs.sample, inputs.embedding, pooling=settings.pooling)

    out, grads, report, seconds = tracked_run(run_dense, inputs, settings.device)
    result = method_result(_baseline_timing(run_dense, inputs, settings, seconds), report, 0.0, 0)
    result["agreement_with_bridge"] = agreement(reference, (out, grads))
    return result


def _baseline_timing(method, inputs, settings, tracked_seconds: float) -> Timing:
    """The tracked run's time, plus ``baseline_repeats`` plain runs."""
    extra = [time_call(lambda: forward_backward(method, inputs), settings.device) for _ in range(settings.baseline_repeats)]
    return Timing.of([tracked_seconds, *extra])


def _ratio(a: float, b: float) -> float | None:
    return float(f"{a / b:.4g}") if b > 0 else None  # 4 significant digits


def gradient_buffers(inputs: BridgeInputs, settings: BridgeBenchSettings) -> dict:
    """Creating the zero-filled gradients of the inputs alone: a floor that every method pays.

    On the CPU a fresh buffer this large comes from the OS page by page, which can dominate
    the bridge's own work; on a GPU the caching allocator makes it a short memset.
    """
    def allocate():
        return [torch.zeros_like(t) for t in inputs.differentiable()]

    return {"time": measure(allocate, repeats=settings.repeats, warmup=settings.warmup, device=settings.device).to_dict(),
            "bytes": tensor_bytes(*inputs.differentiable())}


def pipeline_lookup(inputs: BridgeInputs, settings: BridgeBenchSettings) -> dict:
    """``E[ids]`` (and its backward when E trains): the pipeline's cost, for the bridge's overhead."""
    ids = VocabularyBridge("none", inputs.llm, inputs.sd).sd_ids([c.text for c in inputs.captions]).to(settings.device)

    def lookup():
        out = F.embedding(ids, inputs.embedding)
        if out.requires_grad:
            torch.autograd.grad(out, [inputs.embedding], inputs.grad_output)

    return {"time": measure(lookup, repeats=settings.repeats, warmup=settings.warmup, device=settings.device).to_dict()}


def targets(modes: dict, step: dict | None) -> dict:
    """Each target per mode: the measured value, the limit, and whether it is met."""
    out = {}
    for mode, result in modes.items():
        bridge = result["bridge"]
        checks = {
            "extra_memory_bytes": {"value": bridge["extra_bytes"], "limit": MEMORY_TARGET_BYTES, "met": bridge["extra_bytes"] < MEMORY_TARGET_BYTES},
            "speedup_vs_sparse_coo": {"value": result["speedup_vs_sparse_coo"], "limit": SPEEDUP_TARGET,
                                      "met": (result["speedup_vs_sparse_coo"] or 0) >= SPEEDUP_TARGET},
        }
        if step is not None:
            share = bridge["time"]["median_ms"] / step["time"]["median_ms"]
            checks["share_of_tiny_step"] = {"value": round(share, 5), "limit": STEP_SHARE_TARGET, "met": share < STEP_SHARE_TARGET}
            beyond = max(bridge["beyond_lookup_and_gradient_buffers_ms"], 0.0) / step["time"]["median_ms"]
            checks["share_of_tiny_step_beyond_floor"] = {"value": round(beyond, 5), "limit": STEP_SHARE_TARGET, "met": beyond < STEP_SHARE_TARGET}
        out[mode] = checks
    return out


def run_bridge_bench(settings: BridgeBenchSettings) -> dict:
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    inputs = make_inputs(settings)
    result = {
        "benchmark": "bridge", "machine": machine, "settings": _settings_dict(settings),
        "inputs": {"stgs_rows": int(inputs.sample.soft.shape[0]), "soft_bytes": tensor_bytes(inputs.sample.soft),
                   "embedding_bytes": tensor_bytes(inputs.embedding), "output_shape": list(inputs.grad_output.shape)},
        "memory_method": MEMORY_METHOD,
        "pipeline_lookup": pipeline_lookup(inputs, settings),
        "input_gradient_buffers": gradient_buffers(inputs, settings),
        "modes": {},
    }
    for mode in settings.modes:
        result["modes"][mode] = bench_mode(mode, inputs, settings)
        bridge = result["modes"][mode]["bridge"]
        floor = result["pipeline_lookup"]["time"]["median_ms"] + result["input_gradient_buffers"]["time"]["median_ms"]
        bridge["beyond_lookup_and_gradient_buffers_ms"] = round(bridge["time"]["median_ms"] - floor, 4)
    del inputs
    step = None
    if settings.tiny_step:
        step = tiny_step_timing(repeats=settings.step_repeats, device=settings.device)
        result["tiny_step"] = step
    result["targets"] = targets(result["modes"], step)
    result["load_average_at_end"] = load_average()
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def _settings_dict(settings: BridgeBenchSettings) -> dict:
    return asdict(settings)


def summary_lines(result: dict) -> list[str]:
    """A short table of the result for the terminal."""
    s = result["settings"]
    lines = [
        f"vocabulary bridge: |V_LLM| {s['vocab']['llm_vocab']}, |V_SD| {s['vocab']['sd_vocab']}, {s['captions']} captions x "
        f"{s['caption_tokens']} tokens, width {s['width']} ({result['machine']['device']}, {result['machine']['torch_threads']} threads)",
        f"{'mode':<9} {'bridge fwd+bwd':>15} {'extra memory':>14} {'sparse-COO':>13} {'sparse mem':>13} {'speedup':>9}  dense",
    ]
    for mode, r in result["modes"].items():
        dense = r["dense"]
        dense_text = ms(dense["time"]["median_ms"]) if dense["ran"] else f"not run: {dense['reason']}"
        lines.append(f"{mode:<9} {ms(r['bridge']['time']['median_ms']):>15} {mib(r['bridge']['extra_bytes']):>14} "
                     f"{ms(r['sparse_coo']['time']['median_ms']):>13} {mib(r['sparse_coo']['extra_bytes']):>13} "
                     f"{r['speedup_vs_sparse_coo']:>8}x  {dense_text}")
    lines.append(f"pipeline lookup E[ids] alone: {ms(result['pipeline_lookup']['time']['median_ms'])}")
    if "tiny_step" in result:
        lines.append(f"tiny training step: {ms(result['tiny_step']['time']['median_ms'])}")
    for mode, checks in result["targets"].items():
        parts = [f"{name} {check['value']} (limit {check['limit']}): {verdict(check)}" for name, check in checks.items()]
        lines.append(f"targets [{mode}]: " + "; ".join(parts))
    lines.append(f"took {result['wall_seconds']} s")
    return lines

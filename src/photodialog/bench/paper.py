"""``photodialog bench step --preset paper --random-weights``: the paper's model at full size on a GPU.

Every part is built from its published config values (``paper_configs``) with random weights
and set up as the shipped recipe ``paper-photochat`` with the authors'-code training modes its
header documents: LoRA r 32 on the LLM's q/k/v with its embeddings and LM head in full, the
UNet in full, the ViT, Q-Former, VAE and text encoder frozen (the new projection into the LLM
trains); frozen weights in the recipe's bf16, trainable ones float32 (as ``apply_training_modes``
makes them) under bf16 autocast; gradient checkpointing as the recipe (on); AdamW. The tokenizers are the
synthetic paper-size ones of ``vocab`` (no download); the batch is random token ids and
pixels with one context photo per sample and ``image_targets`` shared photos at 512 px.

Model FLOPs are counted, not estimated: ``torch.utils.flop_counter.FlopCounterMode`` adds up
the matrix multiplications, convolutions and attention kernels that one step actually runs
(forward and backward), once with gradient checkpointing off (model FLOPs) and once as run
(hardware FLOPs, recomputation included). MFU = model FLOPs per step / (median step time x the
GPU's dense bf16 peak); HFU likewise with hardware FLOPs.
For reference, the LLM alone is about (2 + 2 + 2 r) N T for N parameters and T tokens, with r
the share of weights that get a weight gradient: frozen weights skip that third matmul.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass, replace

import torch

from photodialog.bench.machine import describe_machine, load_average
from photodialog.bench.memory import AllocationTimeline
from photodialog.bench.profile import METHOD, profile_step, profiled_call
from photodialog.bench.results import mib, ms
from photodialog.bench.step import TrainStep
from photodialog.bench.paper_configs import PaperArchitecture, standin
from photodialog.bench.timing import measure, measure_interleaved
from photodialog.bench.vocab import VocabularySizes, llm_tokenizer, sd_tokenizer
from photodialog.config import load_config
from photodialog.errors import UserError
from photodialog.models.adapters import count_parameters
from photodialog.models.assembly import apply_training_modes
from photodialog.models.batch import Batch, BatchCaption
from photodialog.models.dialogue_model import JointSettings, PhotoDialogModel
from photodialog.models.formatting import IGNORE
from photodialog.models.image_generator import ImageGenerator
from photodialog.models.pretrained import DTYPES
from photodialog.models.perceptron import ImagePerceptron
from photodialog.training.caches import enable_frozen_caches
from photodialog.training.speed import compile_parts

PHOTO_MARKERS = 2
# Dense bf16 peaks (FLOP/s) from the vendors' data sheets; the first name that matches is used.
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989.4e12), ("H200", 989.4e12), ("GH200", 989.4e12),
             ("A100", 312e12), ("L40S", 362e12)]
FLOPS_FORMULA = ("MFU = model FLOPs of one step / (median step seconds x dense bf16 peak FLOP/s); model FLOPs = the "
                 "matmul, convolution and attention FLOPs that FlopCounterMode counts in one step (forward + backward) with "
                 "gradient checkpointing off and the frozen-output caches off (the whole model's work, so that MFU does not "
                 "drop when a cache saves work); HFU = the FLOPs as run (recomputed forwards included, cached outputs not)")


@dataclass
class PaperStepSettings:
    batch_size: int = 4
    """The recipe's micro-batch."""
    seq_len: int = 256
    image_targets: int = 1
    steps: int = 5
    warmup: int = 2
    gradient_checkpointing: bool | None = None
    """None: as the recipe (on)."""
    peak_tflops: float = 0.0
    standin: bool = False
    """Toy sizes of the same structures, allowed on the CPU (tests)."""
    profile: bool = False
    """Where the step's time goes (``bench.profile``) instead of FLOPs and MFU."""
    baseline: bool = False
    """As before issue 16's speed work: no frozen-output caches, torch's default (unfused) AdamW."""
    compile: bool = False
    """``torch.compile`` the UNet and the LLM decoder layers (``train.compile``)."""
    compare: bool = False
    """Time the baseline and the speed settings in turns on one model (``run_paper_compare``)."""
    device: str = "cuda"


def require_gpu(device: str) -> None:
    """Refuse at once where there is no CUDA GPU: the full-size model would only swap on a CPU."""
    if device == "cpu" or not torch.cuda.is_available():
        raise UserError(
            "--preset paper --random-weights builds Llama-2-7B, BLIP-2 ViT-g/Q-Former and Stable Diffusion 2.1 at full "
            "size (about 40 GB with optimizer state, plus activations): it needs a CUDA GPU with ~80 GB, and none is "
            "available here. Use `photodialog bench step` (tiny preset) on this machine."
        )


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


RECIPE = "paper-photochat"
# The authors'-code variant that the recipe's header documents (LoRA LLM, frozen ViT/Q-Former and text encoder).
AUTHORS_CODE = ["model.trainable.llm=lora", "model.trainable.perceptron=frozen", "model.trainable.text_encoder=frozen"]


def paper_recipe():
    """The shipped paper recipe with the authors'-code training modes: what trains, LoRA, dtypes, batch."""
    return load_config(RECIPE, AUTHORS_CODE)


def build_paper_model(arch: PaperArchitecture, device, *, gradient_checkpointing: bool | None = None, overrides: list[str] | None = None):
    """The joint model with random weights at the architecture's sizes, on ``device``, set up as the recipe
    (``overrides``: recipe overrides instead of the authors'-code training modes)."""
    # the Hugging Face stack is slow to import: only this path needs it
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import (Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel, CLIPTextConfig,
                              CLIPTextModel, LlamaConfig, LlamaForCausalLM)

    recipe = (paper_recipe() if overrides is None else load_config(RECIPE, overrides)).model
    dtype = DTYPES[recipe.dtype]
    vocab = VocabularySizes(llm_vocab=arch.llm["vocab_size"] + PHOTO_MARKERS, sd_vocab=arch.text_encoder["vocab_size"],
                            sd_max_length=arch.text_encoder["max_position_embeddings"])
    llm_tok, sd_tok = llm_tokenizer(vocab), sd_tokenizer(vocab)
    text_config = dict(arch.text_encoder, bos_token_id=sd_tok.bos_token_id, eos_token_id=sd_tok.eos_token_id, pad_token_id=sd_tok.pad_token_id)
    with torch.device(device), default_dtype(dtype):
        llm = LlamaForCausalLM(LlamaConfig(**arch.llm))
        llm.resize_token_embeddings(vocab.llm_vocab, mean_resizing=False)  # + [IMG] [/IMG], as build_model does
        vision = Blip2VisionModel(Blip2VisionConfig(**arch.vision))
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
        unet = UNet2DConditionModel(**arch.unet)
        vae = AutoencoderKL(**arch.vae)
    with torch.device(device):  # BLIP-2 keeps the Q-Former and its queries in float32
        qformer = Blip2QFormerModel(Blip2QFormerConfig(**arch.qformer))
        queries = torch.randn(1, arch.num_query_tokens, arch.qformer["hidden_size"]) * 0.02
    perceptron = ImagePerceptron(vision, qformer, queries, llm.config.hidden_size)
    generator = ImageGenerator(text_encoder, unet, DDPMScheduler(**arch.scheduler), sd_tok, vae=vae, image_size=arch.image_size)
    settings = JointSettings(bridge=recipe.bridge, pooling=recipe.pooling, caption_source=recipe.caption_source,
                             gumbel_noise=recipe.gumbel_noise, image_loss_repeats=recipe.image_loss_repeats,
                             own_caption_path=recipe.own_caption_path)
    model = PhotoDialogModel(llm, llm_tok, perceptron, generator, settings)
    apply_training_modes(model, recipe)
    checkpointing = recipe.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    llm.config.use_cache = False  # training, as build_model sets it: no KV cache to keep
    set_checkpointing(model, checkpointing)
    return model.to(device)


def synthetic_batch(model, arch: PaperArchitecture, settings: PaperStepSettings, device):
    """Random ids and pixels in the trainer's batch layout: one context photo per sample, captions in responses."""
    queries, caption = arch.num_query_tokens, arch.caption_tokens
    batch_size, length = settings.batch_size, settings.seq_len
    response_start = queries + 3  # <s> [IMG] slots [/IMG], then the response
    if length < response_start + caption + 3:
        raise UserError(f"--seq-len {length} is too short: a context photo and a caption need at least {response_start + caption + 3} tokens")
    if settings.image_targets > batch_size:
        raise UserError(f"--image-targets ({settings.image_targets}) cannot exceed --batch-size ({batch_size})")
    generator = torch.Generator().manual_seed(0)
    tokenizer = model.tokenizer
    img_start, img_end = tokenizer.specials["img"], tokenizer.specials["img_end"]
    ids = torch.randint(3, arch.llm["vocab_size"], (batch_size, length), generator=generator)
    ids[:, 0], ids[:, 1], ids[:, queries + 2] = tokenizer.bos_token_id, img_start, img_end
    slots = torch.zeros(batch_size, length, dtype=torch.bool)
    slots[:, 2:queries + 2] = True
    labels = torch.full_like(ids, IGNORE)
    labels[:, response_start:] = ids[:, response_start:]
    captions = []
    for sample in range(settings.image_targets):
        positions = list(range(response_start + 1, response_start + 1 + caption))
        ids[sample, response_start], ids[sample, positions[-1] + 1] = img_start, img_end
        labels[sample, response_start:] = ids[sample, response_start:]
        gold = ids[sample, positions].tolist()
        captions.append(BatchCaption(sample=sample, positions=positions, text=tokenizer.decode(gold), gold_ids=gold, target=sample))
    vision_size = arch.vision["image_size"]
    targets = torch.rand(settings.image_targets, 3, arch.image_size, arch.image_size, generator=generator) * 2 - 1
    batch = Batch(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, photo_slots=slots,
                  context_pixels=torch.randn(batch_size, 3, vision_size, vision_size, generator=generator), captions=captions,
                  target_pixels=targets if settings.image_targets else None,
                  context_keys=[f"context-{i}" for i in range(batch_size)], target_keys=[f"target-{i}" for i in range(settings.image_targets)])
    return batch.to(device)


def speed_settings(model, settings: PaperStepSettings) -> dict:
    """The trainer's speed settings (``training.speed``) unless ``settings.baseline``; what was set.
    The synthetic batch repeats, so after the first step every frozen output comes from the caches:
    the steady state of every epoch after the first."""
    done = {"baseline": settings.baseline, "fused_adamw": not settings.baseline and torch.device(settings.device).type == "cuda"}
    if not settings.baseline:
        done["cached"] = enable_frozen_caches(model, 2**40)
    if settings.compile:
        done["compiled"] = compile_parts(model)
    return done


def attention_implementations(model) -> dict:
    """The attention kernel each part runs: transformers' ``_attn_implementation``, diffusers' processors."""
    parts = {"llm": model.llm, "vision": model.perceptron.vision_model, "qformer": model.perceptron.qformer,
             "text_encoder": model.generator.text_encoder}
    out = {name: getattr(part.config, "_attn_implementation", None) for name, part in parts.items()}
    for name in ("unet", "vae"):
        module = getattr(model.generator, name)
        if module is not None:
            out[name] = sorted({type(p).__name__ for p in module.attn_processors.values()})
    return out


def counted_flops(step) -> int:
    """Matmul, convolution and attention FLOPs that one step runs (forward and backward)."""
    # torch is slow to import: only this path needs it
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # Compiled parts run eagerly while counting: the counter sees aten ops, not the fused kernels inductor makes.
    with counter, torch.compiler.set_stance("force_eager"):
        step()
    return int(counter.get_total_flops())


def set_checkpointing(model, on: bool) -> None:
    if on:
        model.llm.gradient_checkpointing_enable()
        model.generator.unet.enable_gradient_checkpointing()
    else:
        model.llm.gradient_checkpointing_disable()
        model.generator.unet.disable_gradient_checkpointing()


def count_flops(step) -> dict:
    """Model FLOPs of a step (without recomputation), hardware FLOPs (with it) and forward FLOPs per part.

    Gradient checkpointing runs parts of the forward again in backward; model FLOPs leave that
    out, so the step is counted once with checkpointing switched off (None if that does not fit
    in memory). The per-part split uses a forward pass alone: the counter's module attribution
    of backward kernels is unreliable, its totals are not.
    """
    checkpointing = bool(step.model.llm.is_gradient_checkpointing)
    hardware = counted_flops(step)
    caches = step.model.latent_cache, step.model.perceptron_cache
    model_flops = hardware
    step.model.latent_cache = step.model.perceptron_cache = None  # model FLOPs: the frozen parts' work counts
    try:
        if checkpointing:
            set_checkpointing(step.model, False)
        if checkpointing or any(caches):
            model_flops = counted_flops(step)
    except torch.cuda.OutOfMemoryError:
        step.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        model_flops = None
    finally:
        if checkpointing:
            set_checkpointing(step.model, True)
        per_part = forward_flops_per_part(step)
        step.model.latent_cache, step.model.perceptron_cache = caches
    return {"model": model_flops, "hardware": hardware, "forward_per_part": per_part}


def forward_flops_per_part(step) -> dict:
    # torch is slow to import: only this path needs it
    from torch.utils.flop_counter import FlopCounterMode

    forward = FlopCounterMode(display=False)
    # With gradients on: under no_grad, views of trainable parameters (the expanded query tokens)
    # require grad without a grad_fn, which the counter's module tracker cannot hook.
    with forward, torch.autocast(step.device.type, dtype=torch.bfloat16), torch.compiler.set_stance("force_eager"):
        step.model(step.batch, tau=1.0, alpha=1.0)
    per_module = {name: sum(counts.values()) for name, counts in forward.get_flop_counts().items()}
    root = type(step.model).__name__
    return {part: _flops_under(per_module, f"{root}.{path}") for part, path in PART_PATHS.items()}


PART_PATHS = {"llm": "llm", "perceptron": "perceptron", "text_encoder": "generator.text_encoder", "unet": "generator.unet",
              "vae": "generator.vae"}


def _flops_under(per_module: dict, prefix: str) -> int:
    """FLOPs of the outermost recorded modules at or under ``prefix`` (the model calls sub-modules directly)."""
    names = [n for n in per_module if n == prefix or n.startswith(prefix + ".")]
    outermost = [n for n in names if not any(n != m and n.startswith(m + ".") for m in names)]
    return int(sum(per_module[n] for n in outermost))


def peak_memory(step, device) -> dict:
    """Peak bytes of one step (CUDA allocator on a GPU, the allocation timeline on a CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"held_before_step_bytes": int(before), "peak_bytes": int(peak), "peak_step_extra_bytes": int(peak - before),
                "reserved_bytes": int(torch.cuda.max_memory_reserved(device))}
    with AllocationTimeline() as timeline:
        step()
    return {"peak_step_extra_bytes": timeline.report().peak_bytes}


def peak_flops(device, override_tflops: float) -> tuple[float | None, str]:
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    device = torch.device(device)
    if device.type != "cuda":
        return None, "no GPU"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16:
        if key in name:
            return value, f"data sheet ({key})"
    return None, f"unknown GPU '{name}': pass --peak-tflops"


def parameter_summary(model) -> dict:
    out = {}
    for name, module in model.part_modules().items():
        trainable, total = count_parameters(module)
        out[name] = {"parameters": total, "trainable": trainable}
    return out


def run_paper_step_bench(settings: PaperStepSettings) -> dict:
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    arch = standin() if settings.standin else PaperArchitecture()
    try:
        model = build_paper_model(arch, settings.device, gradient_checkpointing=settings.gradient_checkpointing)
        batch = synthetic_batch(model, arch, settings, settings.device)
        speed = speed_settings(model, settings)
        step = TrainStep(model, paper_recipe(), batch, 1.0, settings.device, autocast=torch.bfloat16, fused=not settings.baseline)
        timing = measure(step, repeats=settings.steps, warmup=settings.warmup, device=settings.device)
        memory = peak_memory(step, settings.device)
        flops = count_flops(step)
    except torch.cuda.OutOfMemoryError as err:
        raise UserError(f"out of GPU memory at batch {settings.batch_size} x {settings.seq_len} tokens: lower --batch-size or "
                        f"--seq-len, or add --gradient-checkpointing ({err})") from err
    seconds = timing.median_ms / 1000
    peak, peak_source = peak_flops(settings.device, settings.peak_tflops)
    tokens = int(batch.attention_mask.sum())
    model_flops = flops["model"]
    return {
        "benchmark": "step", "preset": "paper", "architecture": arch.name, "machine": machine, "settings": asdict(settings),
        "recipe": {"name": RECIPE, "overrides": AUTHORS_CODE, "gradient_checkpointing": model.llm.is_gradient_checkpointing},
        "architecture_configs": asdict(arch), "parameters": parameter_summary(model),
        "speed": speed, "attention": attention_implementations(model),
        **step.static_bytes(),
        "batch": {"samples": settings.batch_size, "tokens": tokens, "context_photos": int(batch.context_pixels.shape[0]),
                  "target_photos": settings.image_targets, "image_size": arch.image_size},
        "time": timing.to_dict(), "memory": memory,
        "tokens_per_second": round(tokens / seconds, 2), "photos_per_second": round(settings.image_targets / seconds, 4),
        "model_flops_per_step": model_flops, "hardware_flops_per_step": flops["hardware"],
        "forward_flops_per_part": flops["forward_per_part"],
        "achieved_model_tflops": None if model_flops is None else round(model_flops / seconds / 1e12, 3),
        "peak_tflops": None if peak is None else round(peak / 1e12, 1), "peak_source": peak_source,
        "mfu": None if peak is None or model_flops is None else round(model_flops / seconds / peak, 4),
        "hfu": None if peak is None else round(flops["hardware"] / seconds / peak, 4), "mfu_formula": FLOPS_FORMULA,
        "load_average_at_end": load_average(), "wall_seconds": round(time.perf_counter() - started, 2),
    }


def run_paper_compare(settings: PaperStepSettings) -> dict:
    """Before/after in turns on one model and batch: ``before`` without the frozen-output caches and
    with torch's default AdamW, ``after`` with the caches and fused AdamW (on CUDA), each with its own
    optimizer over the same weights; steps alternate, so a change of machine speed hits both alike."""
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    arch = standin() if settings.standin else PaperArchitecture()
    try:
        model = build_paper_model(arch, settings.device, gradient_checkpointing=settings.gradient_checkpointing)
        batch = synthetic_batch(model, arch, settings, settings.device)
        speed = speed_settings(model, replace(settings, baseline=False))
        after = TrainStep(model, paper_recipe(), batch, 1.0, settings.device, autocast=torch.bfloat16)
        baseline = TrainStep(model, paper_recipe(), batch, 1.0, settings.device, autocast=torch.bfloat16, fused=False)
        caches = model.latent_cache, model.perceptron_cache

        def before():
            model.latent_cache = model.perceptron_cache = None
            try:
                return baseline()
            finally:
                model.latent_cache, model.perceptron_cache = caches

        runs = {"before": before, "after": after}
        timings = measure_interleaved(runs, repeats=settings.steps, warmup=settings.warmup, device=settings.device)
        memory = {name: peak_memory(run, settings.device) for name, run in runs.items()}
        flops = count_flops(after)
    except torch.cuda.OutOfMemoryError as err:
        raise UserError(f"out of GPU memory at batch {settings.batch_size} x {settings.seq_len} tokens (two optimizers' state "
                        f"are held for the comparison): lower --batch-size or --seq-len ({err})") from err
    peak, peak_source = peak_flops(settings.device, settings.peak_tflops)
    tokens = int(batch.attention_mask.sum())

    def variant(name: str) -> dict:
        seconds = timings[name].median_ms / 1000
        model_flops = flops["model"]
        return {"time": timings[name].to_dict(), "memory": memory[name], "tokens_per_second": round(tokens / seconds, 2),
                "mfu": None if peak is None or model_flops is None else round(model_flops / seconds / peak, 4)}

    return {
        "benchmark": "step-compare", "preset": "paper", "architecture": arch.name, "machine": machine, "settings": asdict(settings),
        "recipe": {"name": RECIPE, "overrides": AUTHORS_CODE, "gradient_checkpointing": model.llm.is_gradient_checkpointing},
        "speed": speed, "attention": attention_implementations(model),
        "batch": {"samples": settings.batch_size, "tokens": tokens, "context_photos": int(batch.context_pixels.shape[0]),
                  "target_photos": settings.image_targets, "image_size": arch.image_size},
        "before": variant("before"), "after": variant("after"),
        "speedup_before_over_after": round(timings["before"].median_ms / timings["after"].median_ms, 4),
        "model_flops_per_step": flops["model"], "hardware_flops_per_step_after": flops["hardware"],
        "peak_tflops": None if peak is None else round(peak / 1e12, 1), "peak_source": peak_source, "mfu_formula": FLOPS_FORMULA,
        "load_average_at_end": load_average(), "wall_seconds": round(time.perf_counter() - started, 2),
    }


def compare_summary_lines(result: dict) -> list[str]:
    lines = [f"training step before/after in turns, {result['architecture']} architecture ({result['machine']['device']}): "
             f"{result['batch']['samples']} samples, {result['batch']['tokens']} tokens"]
    for name in ("before", "after"):
        v = result[name]
        lines.append(f"{name:<6}: {ms(v['time']['median_ms'])} median, {v['tokens_per_second']} tokens/s, MFU {v['mfu']}")
    lines += [f"before / after: {result['speedup_before_over_after']}x", f"took {result['wall_seconds']} s"]
    return lines


def run_paper_profile(settings: PaperStepSettings) -> dict:
    """``--profile``: the paper-size step's time per part (``photodialog.bench.profile``), with its
    micro-batch copied from host memory to the device in each step (``data``), as a loader's would be."""
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    arch = standin() if settings.standin else PaperArchitecture()
    try:
        model = build_paper_model(arch, settings.device, gradient_checkpointing=settings.gradient_checkpointing)
        host_batch = synthetic_batch(model, arch, settings, "cpu")
        make_batch = lambda: copy.copy(host_batch).to(settings.device)  # noqa: E731 (Batch.to sets attributes in place)
        speed = speed_settings(model, settings)
        step = TrainStep(model, paper_recipe(), make_batch(), 1.0, settings.device, autocast=torch.bfloat16, fused=not settings.baseline)
        call = profiled_call(step, make_batch)
        timing = measure(call, repeats=settings.steps, warmup=settings.warmup, device=settings.device)
        profile = profile_step(call, steps=min(settings.steps, 3), warmup=0, device=settings.device)
    except torch.cuda.OutOfMemoryError as err:
        raise UserError(f"out of GPU memory at batch {settings.batch_size} x {settings.seq_len} tokens: lower --batch-size or "
                        f"--seq-len ({err})") from err
    return {
        "benchmark": "step-profile", "preset": "paper", "architecture": arch.name, "machine": machine, "settings": asdict(settings),
        "recipe": {"name": RECIPE, "overrides": AUTHORS_CODE, "gradient_checkpointing": model.llm.is_gradient_checkpointing},
        "batch": {"samples": settings.batch_size, "tokens": int(host_batch.attention_mask.sum()),
                  "context_photos": int(host_batch.context_pixels.shape[0]), "target_photos": settings.image_targets,
                  "image_size": arch.image_size},
        "speed": speed, "attention": attention_implementations(model),
        "step_ms_unprofiled": timing.to_dict(), **profile, "method": METHOD,
        "load_average_at_end": load_average(), "wall_seconds": round(time.perf_counter() - started, 2),
    }


def summary_lines(result: dict) -> list[str]:
    mem = result["memory"]
    lines = [
        f"training step, {result['architecture']} architecture, random weights ({result['machine']['device']}): "
        f"{result['batch']['samples']} samples, {result['batch']['tokens']} tokens, {result['batch']['target_photos']} photos at {result['batch']['image_size']} px",
        f"step: {ms(result['time']['median_ms'])} median; peak memory {mib(mem.get('peak_bytes', mem['peak_step_extra_bytes']))}",
        f"{result['tokens_per_second']} tokens/s; {result['achieved_model_tflops']} model TFLOP/s; MFU {result['mfu']}, "
        f"HFU {result['hfu']} ({result['peak_source']})",
        f"took {result['wall_seconds']} s",
    ]
    return lines

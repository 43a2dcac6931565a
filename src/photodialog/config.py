"""Run configuration: typed dataclasses, YAML recipes and ``key=value`` overrides.

A recipe is a YAML file with the sections ``model``, ``data``, ``train`` and ``eval`` (see
``configs/``). Every key is a field below; an unknown key, a value of the wrong type or a
choice outside the allowed set stops the run before any work, with a message naming the key.

Overrides use dotted keys (``model.bridge=none``); a key that exists in only one section may
be written bare (``max_steps=30`` means ``train.max_steps=30``). Values are parsed as YAML, so
``true``, ``3``, ``5e-5`` and ``[a, b]`` have their usual types.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photodialog import json_limits
from photodialog.errors import ConfigError
from photodialog.files import write_text
from photodialog.registry import BRIDGES, DECODINGS, SAMPLERS

TRAIN_MODES = ("frozen", "lora", "full")


@dataclass
class TinySizes:
    """Sizes of the ``tiny`` preset: every part random, small enough to train on 2 CPU cores."""

    llm_architecture: str = "llama"
    """``llama`` (the end-to-end model and pipeline) or ``gpt2`` (the DialoGPT layout of the Divter baseline)."""
    llm_tokenizer: str = "unigram"
    """``unigram`` (SentencePiece Unigram, the default) or ``llama_bpe`` (Llama's own algorithm: BPE with byte fallback)."""
    llm_hidden: int = 128
    llm_layers: int = 4
    llm_heads: int = 4
    llm_vocab: int = 1200
    llm_tie_embeddings: bool = False
    """Share the LLM's input embedding and output head (as many small LMs do): copying a word from the
    context then needs no separate output row per word to be learnt (the shipped LLM's recipe sets it)."""
    vision_pretrain_steps: int = 0
    """Steps of pretraining the image perceptron (ViT, Q-Former, queries) as a classifier of the
    synthetic world's training photos (object, colour, scene) before the LLM ever reads it, as BLIP-2's
    parts are pretrained before the paper uses them (0 = random, as every other tiny part)."""
    vision_pretrain_photos: int = 0
    """Photos the perceptron's pretraining draws from: 0 = the world's training photos; N = N fresh
    photos rendered by the world's own renderer (seeded, on every combination), as BLIP-2's parts
    learn from a corpus far larger than the dialogues. On the 1,600 training photos the tiny ViT named
    the object of 55-57% of test photos, on 20,000 rendered ones 92%, on 40,000 with 8,000 annealed
    steps 98% (docs/performance.md)."""
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_patch: int = 8
    vision_image_size: int = 32
    qformer_hidden: int = 64
    qformer_layers: int = 2
    num_query_tokens: int = 32
    text_encoder_hidden: int = 64
    text_encoder_layers: int = 2
    sd_vocab: int = 900
    unet_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    image_size: int = 16
    """Resolution of the tiny pixel-space generator: 16 px keeps a CPU step short, and the
    world's objects, colours and scenes still read at that size."""
    prediction_type: str = "v_prediction"
    """The tiny scheduler's target: ``v_prediction`` learns faster from scratch than ``epsilon``."""
    unet_attention: list[bool] = field(default_factory=list)
    """Cross-attention to the caption per UNet level (one flag per ``unet_channels`` entry); empty:
    none at the first level, at every other (attention over many pixels is the costly part)."""
    unet_addition_embed_type: str = ""
    """The UNet's ``addition_embed_type`` (diffusers): ``text`` adds an attention-pooled summary of
    the text encoder's hidden states to the timestep embedding of every ResNet block (diffusers'
    ``TextTimeEmbedding``), so the caption steers every level, not only those with cross-attention;
    empty: none, as in Stable Diffusion 1-2."""
    latent: bool = False
    """Diffuse in the latent space of a small VAE (``diffusers.AutoencoderKL``) that is trained on the
    dataset's training photos when the base parts are made (``models/tiny_vae.py``), then frozen;
    false: the UNet works on pixels. At 32 px latent diffusion costs about a tenth per sample."""
    vae_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    """The VAE's block widths; its downsampling factor is 2 ** (len - 1)."""
    latent_channels: int = 4
    vae_train_steps: int = 500
    """Optimizer steps (batch 32) of the VAE's training when the base parts are made (``vae_source=train``)."""
    vae_source: str = "train"
    """Where a latent base's VAE comes from: ``train`` (trained on the run's training photos for
    ``vae_train_steps``), ``bundled`` (the VAE shipped with photodialog, trained on the default
    synthetic world's photos; rebuilt by ``photodialog assets rebuild vae``), or an
    ``AutoencoderKL`` folder."""
    diffusion_source: str = "random"
    """Where a tiny base's Stable Diffusion parts come from: ``random`` (a new CLIP text encoder and
    UNet of these sizes, the caption tokenizer trained on the run's texts, the VAE by
    ``vae_source``), ``bundled`` (the pretrained tiny generator photodialog ships, trained on the
    default synthetic world's (caption, photo) pairs; ``models/tiny_generator.py``), or a Stable
    Diffusion folder saved at these sizes (e.g. an export's ``diffusion/``)."""


@dataclass
class ComponentTraining:
    """How each part trains: ``frozen``, ``lora`` (peft adapters) or ``full``."""

    llm: str = "full"
    perceptron: str = "full"
    unet: str = "full"
    text_encoder: str = "frozen"
    vae: str = "frozen"


@dataclass
class LoraSettings:
    """LoRA as in the authors' code: r 32 on q/k/v, embeddings and LM head trained in full."""

    r: int = 32
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj"])
    train_embeddings: bool = True


@dataclass
class ModelConfig:
    """The see-and-draw model: which parts, from where, and how they are joined."""

    preset: str = "tiny"
    """``tiny`` (random, built offline) or ``paper`` (``from_pretrained`` of the three below)."""
    llm: str = "meta-llama/Llama-2-7b-chat-hf"
    """Causal LM hub id or local folder (``paper`` preset)."""
    blip2: str = "Salesforce/blip2-opt-2.7b-coco"
    """BLIP-2 hub id or folder: its vision model, Q-Former and query tokens are used."""
    diffusion: str = "stabilityai/stable-diffusion-2-1-base"
    """Stable Diffusion hub id or folder with unet/ vae/ text_encoder/ tokenizer/ scheduler/."""
    tiny: TinySizes = field(default_factory=TinySizes)
    parts: list[str] = field(default_factory=lambda: ["llm", "perceptron", "generator"])
    """Which parts this run builds: the pipeline trains ``[llm]`` and ``[generator]`` apart."""
    text_from: str = ""
    """Pipeline image part: the checkpoint (or run folder) whose LLM joins this generator."""
    init_from: list[str] = field(default_factory=list)
    """Pretrained start: run folders (or checkpoints) whose trained weights are copied in before the
    first step, e.g. the LLM + perceptron and the generator pretraining runs of ``photodialog demo``;
    the tiny preset's base parts come from the first one's run folder too (``photodialog.warm_start``)."""
    context_photos: str = "pixels"
    """``pixels`` (the perceptron sees them) or ``caption`` (the pipeline: photos as text)."""
    captioner: str = "gold"
    """For ``context_photos=caption``: ``gold`` (the dataset's descriptions), ``probe`` (the
    synthetic world's trained probe) or a ``transformers`` image-to-text model id/folder."""
    bridge: str = "sentence"
    """``exact`` (Eq. 8), ``sentence`` (Eq. 10, the paper), ``word``, ``aligned`` (beyond the paper: Eq. 8
    position by position, no pooling, so each word of the caption gets its own gradient) or ``none``
    (no gradient)."""
    pooling: str = "mean"
    """Eq. 11 pooling over caption positions: ``mean`` (paper) or ``sum`` (authors' code)."""
    caption_source: str = "sampled"
    """Caption reaching the diffusion model in training: ``sampled`` (decoded STGS tokens), ``argmax``
    (the teacher-forced argmax of the caption logits, whatever the Gumbel noise; with
    ``gumbel_noise=false`` the same as ``sampled``, the authors' code) or ``gold``."""
    gumbel_noise: bool = True
    """Add Gumbel noise in STGS (paper) or use a plain straight-through softmax (authors' code:
    ``hard one-hot + softmax - sg[softmax]``; with ``train.tau_start=train.tau_end=1``, no temperature)."""
    own_caption_path: str = "joint"
    """What the LLM's own caption (``caption_source`` sampled or argmax) trains: ``joint`` (the paper:
    it reaches the generator, training it, and through the bridge the LLM) or ``llm_only`` (beyond
    the paper: L_v is computed twice per photo, on the gold caption to train the generator, and on
    the own caption to train the LLM alone, the generator's parameters getting none of its
    gradient; so a bad caption cannot teach the generator to ignore words). With
    ``train.grad_clip_per_part`` the generator then trains the same, bit for bit, under every bridge
    (``none`` included: its own-caption pass gives nobody a gradient), so arms differ in the LLM only."""
    own_caption_weight: float = 1.0
    """With ``own_caption_path=llm_only``, the weight of the own caption's L_v (the only loss that
    reaches the LLM through the bridge): ``L = L_t + alpha * (L_v(gold) + own_caption_weight * L_v(own))``.
    The generator's loss is untouched, so raising it strengthens the bridge's lesson alone."""
    trainable: ComponentTraining = field(default_factory=ComponentTraining)
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_context_tokens: int = 256
    """Prompt budget in LLM tokens (each context photo costs num_query_tokens + 2); oldest turns go first."""
    max_response_tokens: int = 64
    image_size: int = 0
    """Resolution the generator trains and draws at; 0 = the preset's (``tiny.image_size``, 16 by
    default, for tiny; 512 for paper: the UNet's sample size times the VAE's factor)."""
    image_loss_repeats: int = 1
    """Noise draws per target photo in one step (cheap variance reduction for L_v)."""
    snr_gamma: float = 0.0
    """Min-SNR-gamma weighting of L_v (0 = the plain MSE of Eq. 12); speeds up training from scratch."""
    caption_dropout: float = 0.0
    """Fraction of training captions replaced by the empty caption (for classifier-free guidance)."""
    dtype: str = "float32"
    """Weights dtype: float32, bfloat16 or float16 (frozen parts; trainable ones stay float32)."""
    gradient_checkpointing: bool = False


@dataclass
class DataConfig:
    """Where the dialogues are and how samples are made."""

    path: str = ""
    """Dataset folder (PhotoChat or DialogCC layout, or a synthetic world)."""
    train_split: str = "train"
    dev_split: str = "dev"
    strict: bool = False
    """Stop at the first bad record instead of skipping and counting it."""
    photo_sample_weight: float = 1.0
    """Sampling weight of samples whose response shares a photo (1 = uniform, as the paper)."""
    photo_reply_sample_weight: float = 1.0
    """Sampling weight of samples whose context ends with a photo (the reply to it: what teaches the
    image perceptron to see; 1 = uniform)."""
    only_photo_turns: bool = False
    """Train only on responses that share a photo (the pipeline's diffusion part)."""
    max_dialogues: int = 0
    """Use only the first N dialogues of each split (0 = all); for quick runs."""


@dataclass
class TrainConfig:
    """Optimisation (paper §3.1.2 defaults) and run management."""

    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    batch_size: int = 32
    """Effective batch size (paper: 32), reached by gradient accumulation."""
    micro_batch_size: int | str = 8
    """Samples per forward/backward; or ``auto``: chosen from free GPU memory, or by a fixed rule on a CPU
    (``training/micro_batch.py``), always a divisor of the per-process batch."""
    epochs: int = 20
    max_steps: int = 0
    """Stop after this many optimizer steps (0 = run all epochs)."""
    max_minutes: float = 0.0
    """Stop (with a checkpoint) after this much wall time (0 = no limit)."""
    alpha: float = 1.0
    """Weight of the image loss: L = L_t + alpha * L_v."""
    text_loss_weight: float = 1.0
    tau_start: float = 1.0
    tau_end: float = 0.01
    tau_anneal_epochs: float = 3.0
    tau_anneal_steps: int = 0
    """Anneal over this many steps instead of epochs (0 = use tau_anneal_epochs)."""
    tau_schedule: str = "linear"
    """``linear`` or ``exponential`` from tau_start to tau_end, then constant."""
    grad_clip: float = 1.0
    grad_clip_per_part: bool = False
    """Clip each trained part's gradient (llm, perceptron, generator) to ``grad_clip`` on its own
    norm instead of one norm over all, so that a large gradient on one part does not scale down
    another's (arms that differ in one part's loss then share nothing but their inputs). One process
    or DDP only: under FSDP and DeepSpeed the engine clips one norm over all."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of the trainable weights (0 = off); inference uses it."""
    mixed_precision: str = "auto"
    """``auto`` (bf16 on a GPU that has it, else fp32), ``no``, ``bf16`` or ``fp16``."""
    seed: int = 0
    early_stopping_patience: int = 4
    """Stop when the dev metrics have not improved for this many evaluations (0 = never)."""
    eval_every_epochs: float = 1.0
    eval_every_steps: int = 0
    """Evaluate on dev every N steps instead of every epoch (0 = per epoch)."""
    save_every_steps: int = 200
    competence_turns: int = 0
    """On a synthetic world, score the first N dev target turns at every checkpoint (0 = off): the own
    caption at gold photo turns, share F1, and whether replies read the photo (evaluation/runner.py)."""
    keep_last: int = 2
    log_every_steps: int = 10
    log_sample_ids: bool = False
    """Write the sample indices of every step, per process, to samples.rank<N>.jsonl (for checks)."""
    max_bad_steps_in_row: int = 5
    cache_frozen: bool = True
    """Cache per photo the outputs of frozen parts that have no dropout (VAE latents of target photos; the frozen
    ViT, and Q-Former when it qualifies, of context photos): the same loss with less work (``training/caches.py``)."""
    cache_max_gb: float = 8.0
    """Host memory those caches may hold together; past it, outputs are computed every step."""
    compile: bool = False
    """``torch.compile`` the UNet and each LLM decoder layer (for GPUs: the first steps compile; off by default, and
    on a CPU at tiny sizes the compile time outweighs the gain)."""
    """Consecutive NaN/Inf losses tolerated (each skipped with a warning) before the run stops."""


@dataclass
class EvalConfig:
    """Decoding and the dev/test evaluation protocol (docs/architecture.md, "Evaluation protocol")."""

    max_new_tokens: int = 30
    decoding: str = "greedy"
    """``greedy``, ``beam`` or ``sample``."""
    num_beams: int = 2
    temperature: float = 1.0
    top_p: float = 1.0
    diffusion_steps: int = 20
    guidance_scale: float = 3.0
    sampler: str = "ddim"
    """Diffusion sampling method: ddim, dpm (DPM-Solver++), euler or ddpm (``registry.SAMPLERS``;
    diffusers calls the class a scheduler). Older recipes' ``eval.scheduler`` still reads, with a warning."""
    max_samples: int = 0
    """Evaluate on at most N responses of the split (0 = all)."""
    batch_size: int = 16


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


CHOICES: dict[str, tuple[str, ...]] = {
    "model.preset": ("tiny", "paper"),
    "model.context_photos": ("pixels", "caption"),
    "model.bridge": BRIDGES.names,
    "model.pooling": ("mean", "sum"),
    "model.caption_source": ("sampled", "argmax", "gold"),
    "model.own_caption_path": ("joint", "llm_only"),
    "model.dtype": ("float32", "bfloat16", "float16"),
    "model.tiny.llm_architecture": ("llama", "gpt2"),
    "model.tiny.llm_tokenizer": ("unigram", "llama_bpe"),
    "model.tiny.prediction_type": ("epsilon", "v_prediction"),
    "model.tiny.unet_addition_embed_type": ("", "text"),
    "model.trainable.llm": TRAIN_MODES,
    "model.trainable.perceptron": TRAIN_MODES,
    "model.trainable.unet": TRAIN_MODES,
    "model.trainable.text_encoder": TRAIN_MODES,
    "model.trainable.vae": TRAIN_MODES,
    "train.tau_schedule": ("linear", "exponential"),
    "train.mixed_precision": ("auto", "no", "bf16", "fp16"),
    "eval.decoding": DECODINGS.names,
    "eval.sampler": SAMPLERS.names,
}
PART_NAMES = ("llm", "perceptron", "generator")

# ---------------------------------------------------------------- numeric ranges
# Every int and float key has its range here (a test checks that none is missing). A float
# must also be finite: YAML reads .inf and .nan as numbers, and either would pass a plain "> 0".
SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit
# The limits of the generation settings, in one place: the eval section's ranges below and
# ``models.generation_settings.check_settings`` (chat, the web page, eval's flags, and every
# evaluation of a run's eval section) both read them: a value a recipe may hold is one they accept.
MAX_NEW_TOKENS = 1024  # a chat turn; far longer replies are a typo
MAX_BEAMS = 64
MAX_DIFFUSION_STEPS = 1000  # the noise schedule's length
MAX_GUIDANCE_SCALE = 100.0
MIN_TOP_P = 1e-6


@dataclass(frozen=True)
class Range:
    """Allowed values of one numeric key: ``low``/``high`` bounds (None: none), open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: ``low`` itself is not allowed
    high_open: bool = False
    why: str = ""

    def allows(self, value: float) -> bool:
        if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self, whole: bool) -> str:
        def number(bound: float) -> str:
            return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"

        low = f"{'>' if self.low_open else '>='} {number(self.low)}" if self.low is not None else ""
        high = f"{'<' if self.high_open else '<='} {number(self.high)}" if self.high is not None else ""
        return ("a whole number " if whole else "a finite number ") + " and ".join(part for part in (low, high) if part)


AT_LEAST_0, AT_LEAST_1, ABOVE_0 = Range(0), Range(1), Range(0, low_open=True)
FRACTION = Range(0, 1, high_open=True)
RANGES: dict[str, Range] = {
    "model.tiny.llm_hidden": AT_LEAST_1, "model.tiny.llm_layers": AT_LEAST_1, "model.tiny.llm_heads": AT_LEAST_1,
    "model.tiny.vision_pretrain_steps": Range(0, why="0 = a random perceptron"),
    "model.tiny.vision_pretrain_photos": Range(0, 200_000, why="0 = the world's training photos; each rendered photo is held in memory"),
    "model.tiny.llm_vocab": Range(16, why="room for the special tokens and the text's characters"),
    "model.tiny.vision_hidden": AT_LEAST_1, "model.tiny.vision_layers": AT_LEAST_1, "model.tiny.vision_patch": AT_LEAST_1,
    "model.tiny.vision_image_size": AT_LEAST_1, "model.tiny.qformer_hidden": AT_LEAST_1,
    "model.tiny.qformer_layers": AT_LEAST_1, "model.tiny.num_query_tokens": AT_LEAST_1,
    "model.tiny.text_encoder_hidden": AT_LEAST_1, "model.tiny.text_encoder_layers": AT_LEAST_1,
    "model.tiny.sd_vocab": AT_LEAST_1, "model.tiny.unet_channels": AT_LEAST_1, "model.tiny.image_size": AT_LEAST_1,
    "model.tiny.vae_channels": AT_LEAST_1, "model.tiny.latent_channels": AT_LEAST_1,
    "model.tiny.vae_train_steps": Range(0, why="0 = the VAE stays random"),
    "model.lora.r": AT_LEAST_1, "model.lora.alpha": AT_LEAST_1, "model.lora.dropout": FRACTION,
    "model.max_context_tokens": AT_LEAST_1, "model.max_response_tokens": AT_LEAST_1,
    "model.image_size": AT_LEAST_0, "model.image_loss_repeats": AT_LEAST_1, "model.snr_gamma": AT_LEAST_0,
    "model.caption_dropout": FRACTION,
    "data.photo_sample_weight": ABOVE_0, "data.photo_reply_sample_weight": ABOVE_0, "data.max_dialogues": Range(0, why="0 = all"),
    "train.lr": ABOVE_0, "train.weight_decay": AT_LEAST_0, "train.warmup_steps": AT_LEAST_0,
    "train.batch_size": AT_LEAST_1, "train.micro_batch_size": AT_LEAST_1, "train.epochs": AT_LEAST_1,
    "train.max_steps": Range(0, why="0 = run all epochs"), "train.max_minutes": Range(0, why="0 = no limit"),
    "train.alpha": AT_LEAST_0, "train.text_loss_weight": AT_LEAST_0, "model.own_caption_weight": AT_LEAST_0,
    "train.tau_start": ABOVE_0, "train.tau_end": ABOVE_0, "train.tau_anneal_epochs": AT_LEAST_0,
    "train.tau_anneal_steps": AT_LEAST_0, "train.grad_clip": Range(0, why="0 = no clipping"),
    "train.ema_decay": Range(0, 1, high_open=True, why="0 = off"), "train.seed": Range(0, SEED_MAX),
    "train.early_stopping_patience": Range(0, why="0 = never stop early"), "train.eval_every_epochs": ABOVE_0,
    "train.eval_every_steps": Range(0, why="0 = per epoch"), "train.save_every_steps": AT_LEAST_1,
    "train.competence_turns": Range(0, why="0 = off"),
    "train.keep_last": Range(0, why="0 = keep every checkpoint"), "train.log_every_steps": AT_LEAST_1,
    "train.max_bad_steps_in_row": AT_LEAST_1, "train.cache_max_gb": AT_LEAST_0,
    "eval.max_new_tokens": Range(1, MAX_NEW_TOKENS), "eval.num_beams": Range(1, MAX_BEAMS), "eval.temperature": ABOVE_0,
    "eval.top_p": Range(MIN_TOP_P, 1), "eval.diffusion_steps": Range(1, MAX_DIFFUSION_STEPS, why=f"the schedulers' {MAX_DIFFUSION_STEPS} training steps"),
    "eval.guidance_scale": Range(0, MAX_GUIDANCE_SCALE), "eval.max_samples": Range(0, why="0 = all"), "eval.batch_size": AT_LEAST_1,
}


def _check_ranges(config: "RunConfig") -> None:
    for key, allowed in RANGES.items():
        value = _get(config, key)
        for item in value if isinstance(value, list) else [value]:
            if item == "auto":  # train.micro_batch_size=auto: no number to check yet
                continue
            if not allowed.allows(item):
                why = f" ({allowed.why})" if allowed.why else ""
                raise ConfigError(f"'{key}' must be {allowed.describe(isinstance(item, int))}{why}; got {value!r}")


def _check_tiny_architecture(tiny: TinySizes, image_size: int) -> None:
    """Constraints between the tiny preset's sizes that the model classes would otherwise fail on."""
    rules = [
        (tiny.llm_hidden % tiny.llm_heads == 0, "model.tiny.llm_heads", f"must divide model.tiny.llm_hidden ({tiny.llm_hidden})"),
        (tiny.llm_architecture != "llama" or (tiny.llm_hidden // tiny.llm_heads) % 2 == 0, "model.tiny.llm_heads",
         f"must leave an even head size (llm_hidden / llm_heads = {tiny.llm_hidden / tiny.llm_heads:g}) for Llama's rotary embedding"),
        (tiny.vision_image_size % tiny.vision_patch == 0, "model.tiny.vision_patch", f"must divide model.tiny.vision_image_size ({tiny.vision_image_size})"),
    ]
    # The tiny BLIP-2 and CLIP text encoder use 4 attention heads; the UNet normalises in groups of 8.
    rules += [(getattr(tiny, name) % 4 == 0, f"model.tiny.{name}", "must be a multiple of 4 (4 attention heads)")
              for name in ("vision_hidden", "qformer_hidden", "text_encoder_hidden")]
    rules += [(all(c % 8 == 0 for c in tiny.unet_channels) and tiny.unet_channels, "model.tiny.unet_channels",
               "must be a non-empty list of multiples of 8 (group normalisation in groups of 8)")]
    rules += [(all(c % 8 == 0 for c in tiny.vae_channels) and tiny.vae_channels, "model.tiny.vae_channels",
               "must be a non-empty list of multiples of 8 (group normalisation in groups of 8)")]
    rules += [(not tiny.unet_attention or len(tiny.unet_attention) == len(tiny.unet_channels), "model.tiny.unet_attention",
               f"must have one flag per model.tiny.unet_channels entry ({len(tiny.unet_channels)}), or be empty")]
    # A latent UNet works on the VAE's downsampled photos: both factors must divide the size.
    halvings = 2 ** max(0, len(tiny.unet_channels) - 1) * (2 ** max(0, len(tiny.vae_channels) - 1) if tiny.latent else 1)
    rules += [(tiny.image_size % halvings == 0, "model.tiny.image_size",
               f"must be a multiple of {halvings} (the {'VAE and ' if tiny.latent else ''}UNet halve it "
               f"{halvings.bit_length() - 1} times)")]
    for ok, key, rule in rules:
        if not ok:
            raise ConfigError(f"'{key}' {rule}; got {getattr(tiny, key.rsplit('.', 1)[-1])!r}")
    if image_size and image_size % halvings:
        raise ConfigError(f"'model.image_size' must be a multiple of {halvings} for the tiny UNet (or 0 for its own size); got {image_size}")

# Keys that earlier versions wrote into every saved config.yaml but that never did anything:
# dropped when read, so that the checkpoints of older runs still load. They are no longer keys
# (an override naming one is still refused as unknown).
RETIRED_KEYS = frozenset({"model.tiny.tokenizer_corpus", "data.num_workers", "train.deterministic"})
# Keys (or whole sections) that were renamed: the old name still reads (recipes, saved configs,
# overrides), with a warning naming the version that will refuse it.
RENAMED_KEYS = {"eval.scheduler": "eval.sampler", "model.train": "model.trainable"}
RENAMED_UNTIL = "1.0"  # the first version that refuses the old names
# Keys that nothing reads any more: a recipe, saved config or override that sets one still loads,
# with a warning saying what limits that instead and the version that will refuse the key.
IGNORED_KEYS = {
    "model.max_caption_tokens": ("1.0", "a caption is limited by eval.max_new_tokens when it is generated and by "
                                        "model.max_response_tokens in training"),
}


def _renamed(old: str) -> str:
    new = RENAMED_KEYS[old]
    warnings.warn(f"config key '{old}' is now '{new}'; '{old}' still works but version {RENAMED_UNTIL} will refuse it",
                  FutureWarning, stacklevel=3)
    return new


def _ignored(key: str) -> None:
    version, instead = IGNORED_KEYS[key]
    warnings.warn(f"config key '{key}' is ignored: nothing reads it ({instead}); remove it, version {version} will refuse it",
                  FutureWarning, stacklevel=3)


# ---------------------------------------------------------------- conversion

def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from nested dicts, naming any unknown key or wrong type."""
    if not isinstance(data, dict):
        raise ConfigError(f"'{prefix.rstrip('.') or 'config'}' must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for name in data:
        if prefix + name in IGNORED_KEYS:
            _ignored(prefix + name)
    dropped = RETIRED_KEYS | set(IGNORED_KEYS)
    data = {name: raw for name, raw in data.items() if prefix + name not in dropped}
    data = {(_renamed(prefix + name).rsplit(".", 1)[-1] if prefix + name in RENAMED_KEYS else name): raw for name, raw in data.items()}
    unknown = sorted(set(data) - known)
    if unknown:
        key = prefix + unknown[0]
        raise ConfigError(f"unknown config key '{key}'. Known keys in '{prefix.rstrip('.') or 'config'}': {', '.join(sorted(known))}")
    values = {}
    for name, raw in data.items():
        values[name] = _coerce(hints[name], raw, prefix + name)
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if key == "train.micro_batch_size":  # a whole number, or "auto"
        if value == "auto":
            return value
        hint = int
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value if value is not None else {}, key + ".")
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}' must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"'{key}' must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"'{key}' must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"'{key}' must be a string, got {value!r}")
    return value


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


# ---------------------------------------------------------------- overrides

def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += _leaf_keys(hints[f.name], prefix + f.name + ".")
        else:
            keys.append(prefix + f.name)
    return keys


ALL_KEYS = _leaf_keys(RunConfig)


def resolve_key(key: str) -> str:
    """Full dotted key for ``key``; a bare key is accepted when exactly one field ends with it."""
    if key in ALL_KEYS:
        return key
    old = next((k for k in RENAMED_KEYS if k == key or k.endswith("." + key)), None)
    if old is not None:
        return _renamed(old)
    # a key inside a renamed section: model.train.llm (or train.llm) -> model.trainable.llm
    for old_section, new_section in RENAMED_KEYS.items():
        for full in ALL_KEYS:
            if full.startswith(new_section + "."):
                old_full = old_section + full[len(new_section):]
                if old_full == key or old_full.endswith("." + key):
                    _renamed(old_section)
                    return full
    ignored = next((k for k in IGNORED_KEYS if k == key or k.endswith("." + key)), None)
    if ignored is not None:  # set into the recipe; from_dict drops it with the warning
        return ignored
    matches = [k for k in ALL_KEYS if k.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"config key '{key}' is ambiguous: write one of {', '.join(matches)}")
    close = [k for k in ALL_KEYS if key.split(".")[-1] in k]
    hint = f" Did you mean {', '.join(close[:5])}?" if close else " Run with a recipe from configs/ to see the keys."
    raise ConfigError(f"unknown config key '{key}'.{hint}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``key=value`` pairs into the nested recipe dict (values parsed as YAML)."""
    # only reading or writing a recipe needs PyYAML
    import yaml

    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value (e.g. model.bridge=none)")
        key, text = item.split("=", 1)
        full = resolve_key(key.strip())
        try:
            value = json_limits.load_yaml(text) if text.strip() else ""
        except json_limits.YamlAlias as err:
            raise ConfigError(f"the value of '{key}' has {err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"the value of '{key}' is not valid YAML: {text!r} ({err})") from err
        except (RecursionError, json_limits.TooDeep) as err:  # PyYAML's parser recurses per level
            raise ConfigError(f"the value of '{key}' is {_too_deep(err)}; a config value is a number, "
                              "a word or a short list") from None
        node = data
        parts = full.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


# ---------------------------------------------------------------- validation and loading

def validate(config: RunConfig) -> RunConfig:
    """Check choices, numeric ranges (``RANGES``) and cross-field rules; raise ``ConfigError`` naming the key."""
    for key, allowed in CHOICES.items():
        value = _get(config, key)
        if value not in allowed:
            raise ConfigError(f"'{key}' must be one of {', '.join(allowed)}; got {value!r}")
    model = config.model
    bad = [p for p in model.parts if p not in PART_NAMES]
    if bad or not model.parts:
        raise ConfigError(f"'model.parts' must list some of {', '.join(PART_NAMES)}; got {model.parts!r}")
    if "generator" not in model.parts and "llm" not in model.parts:
        raise ConfigError("'model.parts' needs 'llm' or 'generator'")
    if model.context_photos == "pixels" and "llm" in model.parts and "perceptron" not in model.parts:
        raise ConfigError("'model.context_photos=pixels' needs 'perceptron' in 'model.parts' (or set context_photos=caption)")
    _check_ranges(config)
    if model.preset == "tiny":
        _check_tiny_architecture(model.tiny, model.image_size)
    if config.train.micro_batch_size != "auto" and config.train.batch_size % config.train.micro_batch_size:
        raise ConfigError(
            f"'train.batch_size' ({config.train.batch_size}) must be a multiple of 'train.micro_batch_size' "
            f"({config.train.micro_batch_size}): the effective batch is reached by gradient accumulation"
        )
    if not 0 < config.train.tau_end <= config.train.tau_start:
        raise ConfigError("need 0 < train.tau_end <= train.tau_start")
    if model.own_caption_path == "llm_only" and model.caption_source == "gold":
        raise ConfigError("'model.own_caption_path=llm_only' trains the LLM on its own caption; set "
                          "model.caption_source=sampled or argmax (or own_caption_path=joint for gold captions)")
    return config


def _get(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def recipe_path(name: str) -> Path:
    """A recipe file: a path, or the name of a recipe shipped in ``photodialog/configs``."""
    path = Path(name)
    if path.is_file():
        return path
    folder = Path(__file__).parent / "configs"
    # A bare name, or the README's configs/NAME.yaml from another folder: the shipped recipe of that name.
    stem = path.name if path.name.endswith(".yaml") else path.name + ".yaml"
    shipped = folder / stem
    if shipped.is_file() and (path.parent == Path(".") or path.parent.name == "configs"):
        return shipped
    available = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
    raise ConfigError(f"config file '{name}' not found. Give a path, or one of the shipped recipes: {available}")


def load_config(path: str | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a recipe (or the defaults when ``path`` is None), apply overrides, validate."""
    # only reading or writing a recipe needs PyYAML
    import yaml

    data: dict[str, Any] = {}
    if path:
        file = recipe_path(path)
        too_large = json_limits.file_too_large(file, json_limits.MAX_RECIPE_BYTES)
        if too_large:
            raise ConfigError(f"{too_large}; is it a recipe? A recipe is a short YAML file (see configs/)")
        try:
            data = json_limits.load_yaml(file.read_text(encoding="utf-8")) or {}
        except json_limits.YamlAlias as err:
            raise ConfigError(f"{file} has {err}; a recipe is plain keys and values (see configs/)") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{file} is not valid YAML: {err}") from err
        except (RecursionError, json_limits.TooDeep) as err:  # PyYAML's parser recurses per level
            raise ConfigError(f"{file} is {_too_deep(err)}; a recipe nests a few levels (see configs/)") from None
    data = apply_overrides(data, list(overrides or []))
    return validate(from_dict(RunConfig, data))


def _too_deep(err: Exception) -> str:
    return str(err) if isinstance(err, json_limits.TooDeep) else "nested deeper than the YAML parser can follow"


def save_config(config: RunConfig, path: str | Path) -> None:
    # only reading or writing a recipe needs PyYAML
    import yaml

    write_text(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))  # beside and renamed

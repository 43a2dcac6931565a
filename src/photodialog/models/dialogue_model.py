"""The end-to-end photo-sharing dialogue model (paper §2, Fig. 2), assembled from explicit parts.

``PhotoDialogModel(llm, tokenizer, perceptron, generator, settings)`` (``settings`` a
``JointSettings``: the bridge and the rest of how the parts are joined); any of the three parts
may be absent (the pipeline trains its text and image parts apart). ``forward(batch, tau)`` computes

    L = w_t * L_t + alpha * L_v                                         (Eq. 13)

with ``L_t`` the response NLL (Eq. 2) and ``L_v`` the diffusion loss (Eq. 12) of every photo the
responses share, whose caption reaches the text encoder through STGS (Eq. 4-7) and the
vocabulary bridge (Eq. 8-11), so that ``L_v`` has a gradient on the LLM.

A batch without context photos does not run the perceptron, and one without a target photo does
not run the generator; their weights then get no gradient. Under FSDP and DeepSpeed every process
must give the same weights a gradient in every micro-batch (the gradients are reduced as one
flat buffer), so the trainer names the parts another process runs (``parts_used``) and
``forward(..., idle_parts=...)`` runs them here on one blank input times 0: a zero loss term
whose gradient on their weights is exactly zero.

With ``own_caption_path="llm_only"`` (beyond the paper) ``L_v`` is computed twice per photo:
on the gold caption, which trains the generator and gives the LLM nothing, and on the LLM's own
caption (sampled or argmax), whose gradient reaches the LLM through STGS and the bridge while the
generator's parameters get none of it; so a bad caption cannot teach the generator to ignore
words. ``L = w_t * L_t + alpha * (L_v(gold) + own_caption_weight * L_v(own))``.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from photodialog.models.batch import Batch
from photodialog.models.bridge import CaptionTokens, VocabularyBridge
from photodialog.models.formatting import IGNORE
from photodialog.models.profiling import part
from photodialog.models.stgs import STGSSample, straight_through_gumbel_softmax


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``; to a GPU through pinned memory without blocking, so the host does
    not wait for the GPU's queued work (a copy from pageable memory may)."""
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


OPTIONAL_PARTS = ("perceptron", "generator")  # the parts a batch may leave out (``parts_used``), in a fixed order


def random_state_kept(device: torch.device):
    """A context after which the random generators (the CPU's, and ``device``'s if a GPU) are as
    before it: an idle part's dropout draws leave the batch's own noise (Gumbel, diffusion) as it
    would be without it."""
    device = torch.device(device)
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type)


@dataclass
class JointSettings:
    """How the parts are joined in training (``ModelConfig`` fields of the same names)."""

    bridge: str = "sentence"
    pooling: str = "mean"
    caption_source: str = "sampled"
    """``sampled`` (the STGS sample's tokens), ``argmax`` (the teacher-forced argmax of the caption
    logits, whatever the noise) or ``gold``."""
    gumbel_noise: bool = True
    own_caption_path: str = "joint"
    """``joint``: the caption reaching the generator trains the generator and (through the bridge)
    the LLM; ``llm_only``: the generator trains on gold captions, the own caption trains the LLM only."""
    own_caption_weight: float = 1.0
    """With ``llm_only``: the weight of L_v(own) (``ModelConfig.own_caption_weight``)."""
    image_loss_repeats: int = 1
    caption_dropout: float = 0.0


@dataclass(eq=False)
class LossOutput(dict):
    """The losses of one batch: ``loss`` = text_weight * L_t + alpha * L_v (Eq. 13), the parts
    (None when a part is absent) and diagnostic ``stats`` (floats, for the metrics log).
    ``own_caption_loss``: with ``own_caption_path="llm_only"``, L_v of the LLM's own captions
    (its gradient reaches the LLM only; ``image_loss`` is then L_v of the gold captions, which
    trains the generator only); ``loss`` adds ``alpha`` times it.

    Also a dict of its loss tensors (``out["loss"]`` is ``out.loss``): DeepSpeed ZeRO-3 finds a
    module's output tensors in dicts, tuples and lists only, and hooks them so that the weights the
    forward pass read outside their own module (the bridge reads the text encoder's token
    embedding) are gathered again for the backward pass. It replaces them in place with hooked
    ones; ``__setitem__`` keeps the attribute the same tensor.
    """

    loss: torch.Tensor
    text_loss: torch.Tensor | None = None
    image_loss: torch.Tensor | None = None
    stats: dict = field(default_factory=dict)
    own_caption_loss: torch.Tensor | None = None

    def __post_init__(self):
        for key in ("loss", "text_loss", "image_loss", "own_caption_loss"):
            if getattr(self, key) is not None:
                dict.__setitem__(self, key, getattr(self, key))

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        object.__setattr__(self, key, value)


@contextmanager
def generator_receives_no_gradient(generator):
    """Inside, the generator's parameters do not require grad, so what is computed there gives them
    no gradient while the gradient still flows through the generator to its inputs (the bridged
    caption). Autograd records whether a parameter requires grad when the op runs, so the backward
    pass after the block honours it; gradient checkpointing must be non-reentrant (diffusers' default
    for the UNet), as a reentrant one recomputes in backward, when the flags are back on."""
    params = [p for p in generator.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class PhotoDialogModel(nn.Module):
    """The see-and-draw model (paper §2): an LLM that reads context photos through the image
    perceptron (Eq. 3) and writes captions that reach the image generator through STGS (Eq. 4-7)
    and the vocabulary bridge (Eq. 8-11), so that L_v (Eq. 12) trains the LLM too.

    Any part may be absent: a pipeline's text part has no generator, its image part no LLM (then
    there is no bridge).
    """

    def __init__(self, llm=None, tokenizer=None, perceptron=None, generator=None, settings: JointSettings | None = None):
        super().__init__()
        self.llm, self.tokenizer, self.perceptron, self.generator = llm, tokenizer, perceptron, generator
        self.settings = settings or JointSettings()
        if self.settings.caption_source not in ("sampled", "argmax", "gold"):
            raise ValueError(f"caption_source must be sampled, argmax or gold, got {self.settings.caption_source!r}")
        if self.settings.own_caption_path not in ("joint", "llm_only"):
            raise ValueError(f"own_caption_path must be joint or llm_only, got {self.settings.own_caption_path!r}")
        if self.settings.own_caption_path == "llm_only" and self.settings.caption_source == "gold":
            raise ValueError("own_caption_path=llm_only needs the LLM's own caption: caption_source sampled or argmax")
        self.bridge = None
        # Outputs of frozen parts cached per photo (photodialog.training.caches); None = computed every step.
        self.latent_cache = self.perceptron_cache = None
        if llm is not None and generator is not None:
            self.bridge = VocabularyBridge(self.settings.bridge, tokenizer, generator.tokenizer, pooling=self.settings.pooling)

    @property
    def device(self) -> torch.device:
        """The device of the model's (first) parameters."""
        return next(self.parameters()).device

    # ------------------------------------------------------------ LLM input

    def input_embeddings(self, input_ids: torch.Tensor, photo_slots: torch.Tensor, context_pixels: torch.Tensor,
                         context_keys: list[str] | None = None, *, idle: bool = False) -> torch.Tensor:
        """Token embeddings with each context photo's 32 perceptron outputs at its slots
        (``context_keys``: the photos' files, for the perceptron cache when there is one).
        ``idle``: without context photos, still run the perceptron, on one blank photo times 0
        (the embeddings keep their values; the perceptron's weights get a zero gradient)."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        if self.perceptron is None:
            return embeds
        if context_pixels.shape[0] == 0:
            if not idle:
                return embeds
            blank = context_pixels.new_zeros((1, *context_pixels.shape[1:])).to(embeds.device)
            with part("perceptron"), random_state_kept(embeds.device):
                # Through the embeddings, as real photos go: the gradient reaches the perceptron at the
                # same point of the backward pass on every process.
                return embeds + self.perceptron(blank).sum().to(embeds.dtype) * 0
        with part("perceptron"):
            pixels = context_pixels.to(embeds.device)
            if self.perceptron_cache is not None and context_keys and len(context_keys) == pixels.shape[0]:
                visual = self.perceptron_cache.embed(self.perceptron, pixels, context_keys)
            else:
                visual = self.perceptron(pixels)
        expected = visual.shape[0] * visual.shape[1]
        if photo_slots.device.type == "cpu":
            if int(photo_slots.sum()) != expected:
                raise ValueError(f"{int(photo_slots.sum())} photo slots for {visual.shape[0]} photos x {visual.shape[1]} embeddings")
        else:  # checked on the device: reading the count back would make the host wait for the GPU
            torch._assert_async(photo_slots.sum() == expected, f"photo slots != {visual.shape[0]} photos x {visual.shape[1]} embeddings")
        return embeds.masked_scatter(photo_slots[..., None].to(embeds.device), visual.to(embeds.dtype))

    def _hidden_states(self, batch: Batch, idle_parts=frozenset()) -> torch.Tensor:
        embeds = self.input_embeddings(batch.input_ids, batch.photo_slots, batch.context_pixels, batch.context_keys,
                                       idle="perceptron" in idle_parts)
        decoder = self.llm.get_decoder()
        with part("llm"):
            return decoder(inputs_embeds=embeds, attention_mask=batch.attention_mask, use_cache=False).last_hidden_state

    # ------------------------------------------------------------ training forward

    def parts_used(self, batch: Batch, *, alpha: float = 1.0) -> frozenset[str]:
        """Which of the parts that a batch may leave out ``forward(batch, alpha=alpha)`` runs:
        ``"perceptron"`` when the batch has context photos, ``"generator"`` when a caption has a
        target photo (L_v, with ``alpha`` > 0). The LLM runs on every batch."""
        used = set()
        if self.perceptron is not None and self.llm is not None and batch.context_pixels.shape[0] > 0:
            used.add("perceptron")
        if self.generator is not None and alpha > 0 and any(c.target >= 0 for c in batch.captions):
            used.add("generator")
        return frozenset(used)

    def forward(self, batch: Batch, *, tau: float = 1.0, alpha: float = 1.0, text_weight: float = 1.0,
                generator: torch.Generator | None = None, idle_parts: Collection[str] = frozenset()) -> LossOutput:
        """The training losses of ``batch`` (Eq. 13: L = text_weight * L_t + alpha * L_v).

        L_t (Eq. 2) is the mean NLL of the response tokens; for every caption with a target photo the
        caption logits go through STGS at temperature ``tau`` (Eq. 4-7), the bridge (Eq. 8-11) and the
        diffusion loss L_v (Eq. 12). ``generator`` seeds the Gumbel and diffusion noise. A part the
        model lacks, or ``alpha`` = 0, leaves its loss None.

        ``idle_parts`` (names as ``parts_used`` gives them): parts that run even when this batch
        gives them nothing to do, on one blank input times 0, so that their trained weights get a
        gradient of exactly zero and the loss keeps its value (the module doc says why).
        """
        stats: dict = {}
        text_loss = caption_sample = None
        caption_rows: list[list[int]] = []
        if self.llm is not None:
            text_loss, caption_sample, caption_rows = self._text_forward(batch, tau, generator, idle_parts)
        image_loss = own_loss = None
        if self.generator is not None and alpha > 0:
            image_loss, own_loss = self._image_forward(batch, caption_sample, caption_rows, stats, generator)
        total = torch.zeros((), device=self.device)
        if text_loss is not None and text_weight > 0:
            total = total + text_weight * text_loss
        if image_loss is not None:
            total = total + alpha * image_loss
        elif "generator" in idle_parts and self.generator is not None and alpha > 0:
            with part("diffusion_loss"), random_state_kept(total.device):
                total = total + alpha * self.generator.idle_loss()
        if own_loss is not None:
            total = total + alpha * self.settings.own_caption_weight * own_loss
        return LossOutput(loss=total, text_loss=text_loss, image_loss=image_loss, stats=stats, own_caption_loss=own_loss)

    def _text_forward(self, batch: Batch, tau: float, generator, idle_parts=frozenset()):
        hidden = self._hidden_states(batch, idle_parts)
        # Position t predicts token t+1; only response positions get logits (memory: not B x T x V).
        # The positions are found on the host copy of the labels: a boolean mask on the GPU would make
        # the host wait for it (twice), and so would each caption's row lookup.
        labels = batch.host_labels if batch.host_labels is not None else batch.labels.cpu()
        predicts = labels[:, 1:] != IGNORE
        where = predicts.nonzero()  # (sample, position) in row-major order, as boolean masking takes them
        positions = to_device(where[:, 0] * hidden.shape[1] + where[:, 1], hidden.device)
        with part("llm"):
            logits = self.llm.get_output_embeddings()(hidden.flatten(0, 1).index_select(0, positions))
            targets = to_device(labels[:, 1:][predicts], hidden.device)
            text_loss = F.cross_entropy(logits.float(), targets)
        if self.generator is None or not batch.captions:
            return text_loss, None, []
        # Row of each predicted position in ``logits``; a caption token at position p is predicted at p - 1.
        row_of = torch.full(predicts.shape, -1, dtype=torch.long)
        row_of[predicts] = torch.arange(where.shape[0])
        caption_rows = [row_of[c.sample, [p - 1 for p in c.positions]].tolist() for c in batch.captions]
        flat = sorted({r for rows in caption_rows for r in rows})
        index = {r: i for i, r in enumerate(flat)}
        caption_logits = logits[to_device(torch.tensor(flat, dtype=torch.long), logits.device)] if flat else logits[:0]
        with part("stgs"):
            sample = straight_through_gumbel_softmax(caption_logits, tau, noise=self.settings.gumbel_noise, generator=generator)
        return text_loss, sample, [[index[r] for r in rows] for rows in caption_rows]

    def _image_forward(self, batch: Batch, sample: STGSSample | None, caption_rows, stats, generator):
        """(L_v of the captions that train the generator, L_v of the LLM's own captions when they train
        the LLM alone, else None); (None, None) without a photo to draw."""
        used = [i for i, c in enumerate(batch.captions) if c.target >= 0]
        stats["image_targets"] = len(used)
        if not used:
            return None, None
        # The LLM's own caption (the sample's tokens, or the teacher-forced argmax), read back once for all
        # captions (each read makes the host wait for the GPU); None with gold captions.
        source = self.settings.caption_source
        tokens = None if sample is None or source == "gold" else (sample.tokens if source == "sampled" else sample.argmax()).tolist()
        targets = batch.target_pixels[[batch.captions[i].target for i in used]]
        keys = [batch.target_keys[batch.captions[i].target] for i in used] if len(batch.target_keys) == len(batch.target_pixels) else []
        if self.settings.own_caption_path == "llm_only" and tokens is not None:
            gold = [self._caption_tokens(batch, i, None, caption_rows) for i in used]
            gold_loss = self._diffusion_loss(gold, None, targets, keys, stats, generator)
            own = [self._caption_tokens(batch, i, tokens, caption_rows, dropout=False) for i in used]
            with generator_receives_no_gradient(self.generator):
                own_loss = self._diffusion_loss(own, sample, targets, keys, stats, generator)  # stats: unbridged captions
            return gold_loss, own_loss
        captions = [self._caption_tokens(batch, i, tokens, caption_rows) for i in used]
        return self._diffusion_loss(captions, sample, targets, keys, stats, generator), None

    def _diffusion_loss(self, captions: list[CaptionTokens], sample: STGSSample | None, targets, keys, stats, generator):
        """L_v (Eq. 12) of ``captions`` drawing ``targets``; through the bridge when there is a ``sample``."""
        if self.bridge is not None and sample is not None:
            embedding = self.generator.token_embedding()
            with part("bridge"):
                plan = self.bridge.plan(captions).to(embedding.device)
                stats["unbridged_captions"] = plan.unbridged
                bridged = self.bridge.inputs_embeds(plan, sample, embedding)
            with part("text_encoder"):
                hidden = self.generator.encode_embeddings(bridged)
        elif self.bridge is not None:  # gold captions beside an LLM: read as the bridge reads them, no gradient to it
            embedding = self.generator.token_embedding()
            ids = self.bridge.sd_ids([c.text for c in captions]).to(embedding.device)
            with part("text_encoder"):
                hidden = self.generator.encode_embeddings(torch.nn.functional.embedding(ids, embedding))
        else:  # no gradient path to an LLM: the captions are encoded as text, as at inference
            with part("text_encoder"):
                hidden = self.generator.encode_text([c.text for c in captions])
        targets = targets.to(hidden.device)
        clean = None
        if self.latent_cache is not None and keys:
            with part("diffusion_loss"), part("vae_encode"):
                clean = self.latent_cache.model_space(targets, keys)
        with part("diffusion_loss"):
            return self.generator.loss(hidden, targets, repeats=self.settings.image_loss_repeats, generator=generator, clean=clean)

    def _caption_tokens(self, batch: Batch, index: int, tokens: list[int] | None, caption_rows, *, dropout: bool = True) -> CaptionTokens:
        """``tokens``: the own caption's token of every caption row (host list), or None without a sample
        or with gold captions. ``dropout``: may be replaced by the empty caption (``caption_dropout``)."""
        caption = batch.captions[index]
        if dropout and self.training and self.settings.caption_dropout > 0 and random.random() < self.settings.caption_dropout:
            return CaptionTokens(rows=[], llm_ids=[], text="")  # unconditional example for guidance
        if not caption_rows:  # generator trained alone (pipeline): the gold caption text
            return CaptionTokens(rows=[], llm_ids=[], text=caption.text)
        rows = caption_rows[index]
        if tokens is None:
            return CaptionTokens(rows=rows, llm_ids=caption.gold_ids, text=caption.text)
        sampled = [tokens[r] for r in rows]
        text = self.tokenizer.decode(sampled, skip_special_tokens=True).strip()
        return CaptionTokens(rows=rows, llm_ids=sampled, text=text)

    # ------------------------------------------------------------ parts

    def part_modules(self) -> dict[str, nn.Module]:
        """The trainable parts by name, for per-part gradient norms and checkpoints."""
        parts = {"llm": self.llm, "perceptron": self.perceptron}
        if self.generator is not None:
            parts.update(unet=self.generator.unet, text_encoder=self.generator.text_encoder, vae=self.generator.vae)
        return {name: module for name, module in parts.items() if module is not None}

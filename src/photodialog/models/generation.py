"""Inference (paper §2.5): perceive the context photos, write the response, draw its photos.

The LLM generates with its KV cache (greedy, beam or sampling); the text between ``[IMG]`` and
``[/IMG]`` goes to the diffusion model as a caption. A caption left open at the length limit is
closed; an empty caption shares no photo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from photodialog import IMG_END, IMG_START
from photodialog.config import EvalConfig
from photodialog.data.schema import Turn, photo_turn_text
from photodialog.errors import UserError
from photodialog.models.batch import PhotoTensors
from photodialog.models.formatting import DialogueFormatter
from photodialog.models.image_generator import SAMPLERS as SAMPLER_SCHEDULERS

DECODINGS = ("greedy", "beam", "sample")
SAMPLERS = tuple(SAMPLER_SCHEDULERS)  # the names a setting or flag may give; image_generator maps them to schedulers
MAX_NEW_TOKENS = 1024  # a chat turn; far longer replies are a typo
MAX_BEAMS = 64
MAX_DIFFUSION_STEPS = 1000  # the noise schedule's length
MAX_GUIDANCE_SCALE = 100.0


@dataclass
class GenerationSettings:
    max_new_tokens: int = 30
    decoding: str = "greedy"  # greedy | beam | sample
    num_beams: int = 2
    temperature: float = 1.0
    top_p: float = 1.0
    diffusion_steps: int = 20
    guidance_scale: float = 3.0
    sampler: str = "ddim"
    seed: int = 0
    draw_photos: bool = True


def check_settings(settings: GenerationSettings) -> GenerationSettings:
    """``settings`` unchanged, or a ``UserError`` naming the first value out of range.

    The one check for chat, the web page and evaluation, so that a setting one accepts the
    others accept too; it runs before the model loads, so a bad value is a message, not a traceback.
    """
    _choice("decoding", settings.decoding, DECODINGS)
    _choice("sampler", settings.sampler, SAMPLERS)
    _within("max new tokens", settings.max_new_tokens, 1, MAX_NEW_TOKENS)
    _within("number of beams", settings.num_beams, 1, MAX_BEAMS)
    _within("diffusion steps", settings.diffusion_steps, 1, MAX_DIFFUSION_STEPS)
    _within("guidance scale", settings.guidance_scale, 0.0, MAX_GUIDANCE_SCALE)
    _within("top-p", settings.top_p, 1e-6, 1.0)
    _within("seed", settings.seed, 0, 2**63 - 1)
    if settings.decoding == "beam" and settings.num_beams < 2:  # one beam is greedy decoding under another name
        raise UserError(f"beam search needs at least 2 beams (got {settings.num_beams}); use greedy decoding for one")
    if settings.decoding == "sample" and not settings.temperature > 0:
        raise UserError(f"temperature must be above 0 for sampling (got {settings.temperature}); use greedy decoding for 0")
    return settings


def settings_from_config(config: EvalConfig, overrides: Mapping[str, Any] | None = None) -> GenerationSettings:
    """A run's ``eval`` section as generation settings, with ``overrides`` (None values ignored), checked.

    Raises ``ValueError`` for an override that is not a ``GenerationSettings`` field and
    ``UserError`` (``check_settings``) for a value out of range.
    """
    settings = GenerationSettings(
        max_new_tokens=config.max_new_tokens, decoding=config.decoding, num_beams=config.num_beams,
        temperature=config.temperature, top_p=config.top_p, diffusion_steps=config.diffusion_steps,
        guidance_scale=config.guidance_scale, sampler=config.scheduler,
    )
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(GenerationSettings)})
    if unknown:
        raise ValueError(f"unknown generation settings {unknown}")
    return check_settings(replace(settings, **overrides))


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} '{value}'; choose one of {', '.join(choices)}")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low:g} and {high:g} (got {value:g})")


@dataclass
class Reply:
    """A generated response: its text (photos inline as ``[IMG] caption [/IMG]``), captions, photos."""

    text: str
    captions: list[str] = field(default_factory=list)
    photos: list = field(default_factory=list)  # PIL images, one per caption
    closed_open_caption: bool = False
    dropped_empty_captions: int = 0


def parse_response(tokenizer, ids: list[int]) -> Reply:
    """Text and captions from generated ids, mending a caption left open and dropping empty ones."""
    start, end = tokenizer.convert_tokens_to_ids(IMG_START), tokenizer.convert_tokens_to_ids(IMG_END)
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    pieces: list[str] = []
    captions: list[str] = []
    current: list[int] = []
    caption: list[int] | None = None
    reply = Reply(text="")

    def flush_text():
        text = tokenizer.decode(current, skip_special_tokens=True).strip()
        if text:
            pieces.append(text)
        current.clear()

    def close_caption():
        text = tokenizer.decode(caption, skip_special_tokens=True).strip()
        if text:
            captions.append(text)
            pieces.append(photo_turn_text(text))
        else:
            reply.dropped_empty_captions += 1

    for token in ids:
        if token in stops:
            break
        if token == start:
            if caption is not None:  # a new [IMG] before [/IMG]: close the first
                close_caption()
            flush_text()
            caption = []
        elif token == end:
            if caption is not None:
                close_caption()
                caption = None
        elif caption is not None:
            caption.append(token)
        else:
            current.append(token)
    if caption is not None:
        reply.closed_open_caption = True
        close_caption()
    flush_text()
    reply.text, reply.captions = " ".join(pieces), captions
    return reply


class Responder:
    """Generates replies for dialogue contexts with a ``PhotoDialogModel``."""

    def __init__(self, model, formatter: DialogueFormatter, photos: PhotoTensors):
        self.model, self.formatter, self.photos = model, formatter, photos

    def prompt_inputs(self, contexts: list[list[Turn]], responders: list[str]):
        """Left-padded prompt embeddings and attention mask for a batch of contexts."""
        tokenizer, model = self.model.tokenizer, self.model
        encoded = [self.formatter.encode_prompt(ctx, who)[:3] for ctx, who in zip(contexts, responders)]
        length = max(len(ids) for ids, _, _ in encoded)
        input_ids = torch.full((len(encoded), length), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        slots = torch.zeros_like(input_ids, dtype=torch.bool)
        pixels = []
        size = model.perceptron.image_size if model.perceptron is not None else 0
        for row, (ids, slot_positions, photos) in enumerate(encoded):
            pad = length - len(ids)
            input_ids[row, pad:] = torch.tensor(ids)
            mask[row, pad:] = 1
            slots[row, [pad + s for s in slot_positions]] = True
            for photo in photos:
                tensor = self.photos.get(photo, "context")
                pixels.append(tensor if tensor is not None else torch.zeros(3, size, size))
        device = model.device
        context_pixels = torch.stack(pixels) if pixels else torch.zeros(0, 3, size, size)
        embeds = model.input_embeddings(input_ids.to(device), slots.to(device), context_pixels.to(device))
        return embeds, mask.to(device)

    @torch.no_grad()
    def generate_ids(self, contexts, responders, settings: GenerationSettings, streamer=None) -> list[list[int]]:
        tokenizer = self.model.tokenizer
        embeds, mask = self.prompt_inputs(contexts, responders)
        kwargs = dict(max_new_tokens=settings.max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, use_cache=True, streamer=streamer)
        if settings.decoding == "sample":
            kwargs.update(do_sample=True, temperature=max(settings.temperature, 1e-4), top_p=settings.top_p)
            torch.manual_seed(settings.seed)
        elif settings.decoding == "beam":
            kwargs.update(do_sample=False, num_beams=settings.num_beams)
        else:
            kwargs.update(do_sample=False, num_beams=1)
        output = self.model.llm.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs)
        return output.tolist()

    def respond(self, contexts: list[list[Turn]], responders: list[str], settings: GenerationSettings,
                streamer=None, on_diffusion_step: Callable[[], None] | None = None) -> list[Reply]:
        """Replies (text, captions and drawn photos) for a batch of contexts."""
        was_training = self.model.training
        self.model.eval()
        try:
            replies = [parse_response(self.model.tokenizer, ids) for ids in self.generate_ids(contexts, responders, settings, streamer)]
            if settings.draw_photos and self.model.generator is not None:
                self._draw(replies, settings, on_diffusion_step)
        finally:
            self.model.train(was_training)
        return replies

    def _draw(self, replies: list[Reply], settings: GenerationSettings, on_step) -> None:
        captions = [c for r in replies for c in r.captions]
        if not captions:
            return
        images = self.model.generator.generate(captions, steps=settings.diffusion_steps, guidance_scale=settings.guidance_scale,
                                               seed=settings.seed, sampler=settings.sampler, progress=on_step)
        it = iter(images)
        for reply in replies:
            reply.photos = [next(it) for _ in reply.captions]

"""Inference (paper §2.5): perceive the context photos, write the response, draw its photos.

The LLM generates with its KV cache (greedy, beam or sampling); the text between ``[IMG]`` and
``[/IMG]`` goes to the diffusion model as a caption. A caption left open at the length limit is
closed; an empty caption shares no photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from photodialog import IMG_END, IMG_START
from photodialog.data.schema import Turn, photo_turn_text
from photodialog.models.batch import PhotoTensors
from photodialog.models.formatting import DialogueFormatter
from photodialog.models.generation_settings import GenerationSettings
from photodialog.registry import DECODINGS

# ------------------------------------------------------------ decodings (registered in photodialog.registry)


def greedy_decoding(settings: GenerationSettings) -> dict[str, Any]:
    """``generate()`` arguments of greedy decoding: the most likely token at each step."""
    return {"do_sample": False, "num_beams": 1}


def beam_decoding(settings: GenerationSettings) -> dict[str, Any]:
    """``generate()`` arguments of beam search over ``settings.num_beams`` beams."""
    return {"do_sample": False, "num_beams": settings.num_beams}


def sample_decoding(settings: GenerationSettings) -> dict[str, Any]:
    """``generate()`` arguments of sampling with temperature and top-p; seeds torch with
    ``settings.seed`` so that the same seed writes the same reply."""
    torch.manual_seed(settings.seed)
    return {"do_sample": True, "temperature": max(settings.temperature, 1e-4), "top_p": settings.top_p}


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
        """The new token ids of one reply per context (prompt excluded), decoded as ``settings`` says
        (greedy, beam or sampling, at most ``max_new_tokens``, KV cache on); ``streamer`` receives tokens as they come.
        """
        tokenizer = self.model.tokenizer
        embeds, mask = self.prompt_inputs(contexts, responders)
        kwargs = dict(max_new_tokens=settings.max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, use_cache=True, streamer=streamer)
        kwargs.update(DECODINGS.load(settings.decoding)(settings))
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

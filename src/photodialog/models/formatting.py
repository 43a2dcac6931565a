"""How a dialogue becomes the LLM's token sequence, for training and for inference alike.

Layout (one sequence per sample)::

    <s> A: hi there B: look [IMG] <32 photo slots> [/IMG] A: | wow, a red car!</s>
        `------------- prompt (context, truncated) ----------' `--- response ---'

Speakers are tagged ``A``/``B`` by order of appearance; the prompt ends with the responding
speaker's tag. A context photo becomes ``[IMG]``, ``num_query_tokens`` slots that the model
fills with the perceptron's embeddings, and ``[/IMG]`` (``context_photos=pixels``), or stays
``[IMG] caption [/IMG]`` with the caption from a captioner (``caption``, the pipeline). A photo
with no local file is always given as its caption. Labels cover the response and ``</s>``; the
caption tokens of a response are where the STGS samples (paper §2.4.1).

The captioners of a pipeline's context photos (``make_captioner``): a synthetic world's probe, or a
``transformers`` image-to-text model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from photodialog import IMG_END, IMG_START
from photodialog.config import ModelConfig
from photodialog.data.photos import load_photo
from photodialog.data.samples import truncate_context
from photodialog.data.schema import PHOTO_SPAN, Photo, Sample, Turn
from photodialog.data.synth import Triple, caption_for
from photodialog.data.synth.probe import Probe
from photodialog.errors import UserError

IGNORE = -100
TAGS = ("A", "B")


@dataclass
class ResponseCaption:
    """One photo shared in a response: its caption token positions and gold caption."""

    positions: list[int]  # indices into input_ids of the caption tokens (between the markers)
    text: str
    photo: Photo | None


@dataclass
class EncodedSample:
    """One sample as token ids in the training layout: ``labels`` are the response's ids and
    ``IGNORE`` elsewhere; ``photo_slots`` are the positions that receive the context photos'
    embeddings (``num_query_tokens`` per photo, in ``context_photos`` order).
    """

    input_ids: list[int]
    labels: list[int]
    photo_slots: list[int] = field(default_factory=list)  # positions filled with photo embeddings
    context_photos: list[Photo] = field(default_factory=list)  # one per block of slots, in order
    captions: list[ResponseCaption] = field(default_factory=list)


class DialogueFormatter:
    """Turns samples into token ids with the model's tokenizer and photo-slot layout."""

    def __init__(self, tokenizer, *, photo_slots: int, context_photos: str = "pixels", captioner=None,
                 max_context_tokens: int = 256, max_response_tokens: int = 64):
        self.tokenizer = tokenizer
        self.photo_slots = photo_slots
        self.context_photos = context_photos
        self.captioner = captioner
        self.max_context_tokens = max_context_tokens
        self.max_response_tokens = max_response_tokens
        self.img_start = tokenizer.convert_tokens_to_ids(IMG_START)
        self.img_end = tokenizer.convert_tokens_to_ids(IMG_END)
        self.slot_id = tokenizer.pad_token_id

    # ------------------------------------------------------------ prompt

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids if text else []

    def _speaker_tags(self, turns: list[Turn]) -> dict[str, str]:
        tags: dict[str, str] = {}
        for turn in turns:
            if turn.speaker not in tags:
                tags[turn.speaker] = TAGS[len(tags) % 2]
        return tags

    def _photo_as_pixels(self, photo: Photo) -> bool:
        return self.context_photos == "pixels" and self.photo_slots > 0 and bool(photo.path)

    def encode_turn(self, turn: Turn, tag: str) -> tuple[list[int], list[int], list[Photo]]:
        """(ids, slot offsets within ids, photos perceived) for one context turn."""
        ids = self._ids(f"{tag}:")
        slots: list[int] = []
        photos: list[Photo] = []
        last = 0
        for index, match in enumerate(PHOTO_SPAN.finditer(turn.text)):
            ids += self._ids(turn.text[last:match.start()])
            photo = turn.photos[index] if index < len(turn.photos) else Photo(caption=match.group(1))
            if self._photo_as_pixels(photo):
                ids.append(self.img_start)
                slots += list(range(len(ids), len(ids) + self.photo_slots))
                ids += [self.slot_id] * self.photo_slots
                ids.append(self.img_end)
                photos.append(photo)
            else:
                ids += [self.img_start] + self._ids(self._caption_for(photo)) + [self.img_end]
            last = match.end()
        ids += self._ids(turn.text[last:])
        return ids, slots, photos

    def _caption_for(self, photo: Photo) -> str:
        if self.captioner is None or not photo.path:
            return photo.caption
        return self.captioner.caption(photo)

    def encode_prompt(self, context: list[Turn], responder: str, tags: dict[str, str] | None = None):
        """(ids, slot positions, photos, truncation info) of the prompt ending in the responder's tag."""
        tags = tags or self._speaker_tags(context + [Turn(speaker=responder, text="")])
        tag_cost = len(self._ids(f"{tags[responder]}:")) + 1  # + <s>
        sample = Sample(dialogue_id="", turn_index=len(context), context=context, response=Turn(responder, ""))
        cost = lambda turn: len(self.encode_turn(turn, tags[turn.speaker])[0])  # noqa: E731
        kept = truncate_context(sample, cost, self.max_context_tokens - tag_cost)
        ids = [self.tokenizer.bos_token_id]
        slots, photos = [], []
        for turn in kept.context:
            turn_ids, turn_slots, turn_photos = self.encode_turn(turn, tags[turn.speaker])
            slots += [len(ids) + s for s in turn_slots]
            photos += turn_photos
            ids += turn_ids
        ids += self._ids(f"{tags[responder]}:")
        return ids, slots, photos, kept

    # ------------------------------------------------------------ training sample

    def encode(self, sample: Sample) -> EncodedSample:
        """``sample`` as prompt + response ids with labels on the response only (teacher forcing)."""
        tags = self._speaker_tags(sample.context + [sample.response])
        prompt, slots, photos, _ = self.encode_prompt(sample.context, sample.response.speaker, tags)
        response, captions = self.encode_response(sample.response, offset=len(prompt))
        return EncodedSample(
            input_ids=prompt + response, labels=[IGNORE] * len(prompt) + response, photo_slots=slots,
            context_photos=photos, captions=captions,
        )

    def encode_response(self, response: Turn, offset: int = 0) -> tuple[list[int], list[ResponseCaption]]:
        """Response ids (ending in </s>) and its captions; a cut never leaves a caption open."""
        ids = self._ids(response.text)[: self.max_response_tokens]
        if self.img_start in ids:
            last_start = len(ids) - 1 - ids[::-1].index(self.img_start)
            if self.img_end not in ids[last_start:]:
                ids = ids[:last_start]  # the cut fell inside a caption: drop that photo whole
        ids.append(self.tokenizer.eos_token_id)
        captions, start, photo_index = [], None, 0
        for position, token in enumerate(ids):
            if token == self.img_start:
                start = position + 1
            elif token == self.img_end and start is not None:
                photo = response.photos[photo_index] if photo_index < len(response.photos) else None
                decoded = self.tokenizer.decode(ids[start:position], skip_special_tokens=True).strip()
                text = photo.caption if photo is not None else decoded
                captions.append(ResponseCaption(positions=[offset + p for p in range(start, position)], text=text, photo=photo))
                photo_index += 1
                start = None
        return ids, captions


# The prompt layout above as a Jinja chat template (``tokenizer.chat_template``), written into an
# export's llm/ so that stock ``transformers`` (``tokenizer.apply_chat_template``) lays a dialogue
# out as photodialog does: roles ``user``/``assistant`` are tagged A/B by order of appearance, the
# generation prompt is the assistant's tag, and a photo is given as its caption,
# ``[IMG] caption [/IMG]`` (perceived pixels need photodialog's perceptron). The space before
# ``[IMG]`` becomes a literal ``▁``: encode_turn tokenizes the text before a photo on its own, so
# that space is a token of its own, which the marker's left-strip would otherwise swallow.
# Context truncation (max_context_tokens) is photodialog's, not the template's.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(first=none) -%}"
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['user', 'assistant'] -%}"
    "{{- raise_exception('photodialog dialogues have two speakers: roles user and assistant, not ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- if ns.first is none -%}{%- set ns.first = message['role'] -%}{%- endif -%}"
    "{{- (' ' if not loop.first else '') + ('A' if message['role'] == ns.first else 'B') + ': ' -}}"
    "{{- message['content'] | replace(' " + IMG_START + "', '\u2581" + IMG_START + "') -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- (' ' if messages else '') + ('A' if ns.first in [none, 'assistant'] else 'B') + ':' -}}"
    "{%- endif -%}"
)


class ProbeCaptioner:
    """Captions a synthetic world's photos with its trained probe (a small trained captioner)."""

    def __init__(self, world_dir: str):
        self.probe = Probe.load(world_dir)
        self.cache: dict[str, str] = {}

    def caption(self, photo: Photo) -> str:
        """The probe's caption of ``photo`` ("a red car at the beach"), cached per file; raises ``DataError`` for an unreadable photo."""
        if photo.path not in self.cache:
            found = self.probe.predict([load_photo(photo.path)])[0]
            self.cache[photo.path] = caption_for(Triple(found["object"], found["colour"], found["scene"]))
        return self.cache[photo.path]


class ModelCaptioner:
    """Captions photos with a ``transformers`` image-to-text model (e.g. BLIP-2's captioner).

    Loaded on first use, on the GPU in bfloat16 when there is one; captions are cached per file.
    """

    def __init__(self, path_or_id: str):
        self.path_or_id = path_or_id
        self.model = self.processor = None
        self.cache: dict[str, str] = {}

    def _load(self) -> None:
        # the Hugging Face stack is slow to import: only this path needs it
        from transformers import AutoModelForImageTextToText, AutoProcessor

        cuda = torch.cuda.is_available()
        try:
            self.processor = AutoProcessor.from_pretrained(self.path_or_id)
            self.model = AutoModelForImageTextToText.from_pretrained(
                self.path_or_id, dtype=torch.bfloat16 if cuda else torch.float32).to("cuda" if cuda else "cpu").eval()
        except (OSError, ValueError) as err:
            raise UserError(f"could not load the captioner '{self.path_or_id}': {err}") from err

    @torch.no_grad()
    def caption(self, photo: Photo) -> str:
        """The captioner's text for ``photo`` (at most 30 new tokens), loading the model on first use; cached per file.

        Raises ``UserError`` when the model cannot be loaded and ``DataError`` for an unreadable photo.
        """
        if photo.path not in self.cache:
            if self.model is None:
                self._load()
            inputs = self.processor(images=load_photo(photo.path), return_tensors="pt").to(self.model.device, self.model.dtype)
            ids = self.model.generate(**inputs, max_new_tokens=30)
            self.cache[photo.path] = self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
        return self.cache[photo.path]


def make_captioner(model: ModelConfig, data_path: str, probe: Path | None = None):
    """What turns context photos into text for a pipeline (``model.context_photos=caption``).

    None for ``captioner=gold`` (the dataset's descriptions) or when photos are perceived as pixels;
    for ``probe``, the probe folder ``probe`` (an export's copy) or else the world's at ``data_path``
    (``UserError`` without either); else a ``transformers`` image-to-text model id or folder.
    """
    if model.context_photos != "caption" or model.captioner == "gold":
        return None
    if model.captioner == "probe":
        if probe is not None:
            return ProbeCaptioner(str(probe))
        if not data_path:
            raise UserError("captioner=probe needs data.path: the synthetic world whose probe/ captions the photos")
        return ProbeCaptioner(data_path)
    return ModelCaptioner(model.captioner)

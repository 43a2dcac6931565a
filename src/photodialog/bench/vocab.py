"""Paper-size vocabularies without downloading a tokenizer: synthetic word-level tokenizers.

The bridge's per-batch work depends on the vocabulary *sizes* (|V_LLM| = 32,002 for Llama-2 with
``[IMG]``/``[/IMG]``, |V_SD| = 49,408 for CLIP) and on how many tokens a caption has, not on the
token strings. ``SyntheticTokenizer`` has the real sizes and answers the calls that
``VocabularyBridge`` makes (``__call__``, ``all_special_ids``, ``model_max_length``,
``get_vocab``), so ``VocabularyBridge.plan`` and ``inputs_embeds`` run unchanged on it.

Each made-up word ``w<k>`` splits into a fixed, pseudo-random list of 1-3 LLM tokens and 1-2 CLIP
tokens (derived from the word, so the same word always gives the same ids). For the ``exact``
mode (Eq. 8) a fraction of the LLM tokens (``exact_match_fraction``, default one half: an
assumption, the real Llama-2/CLIP overlap cannot be computed offline) have the same text as a
CLIP token.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from photodialog.models.bridge import CaptionTokens

LLAMA2_VOCAB = 32_000
PHOTO_TOKENS = 2  # [IMG], [/IMG]
CLIP_VOCAB = 49_408
CLIP_MAX_LENGTH = 77


@dataclass
class VocabularySizes:
    """The paper's sizes (defaults) or smaller ones for tests."""

    llm_vocab: int = LLAMA2_VOCAB + PHOTO_TOKENS
    sd_vocab: int = CLIP_VOCAB
    sd_max_length: int = CLIP_MAX_LENGTH
    exact_match_fraction: float = 0.5


class SyntheticTokenizer:
    """A word-level tokenizer over a made-up vocabulary of a given size (the bridge's view of one)."""

    def __init__(self, *, size: int, specials: dict[str, int], pieces_per_word: tuple[int, int], strings, max_length: int = 4096,
                 bos: int | None = None, eos: int | None = None, pad: int = 0, salt: str = ""):
        self.size, self.specials = size, specials
        self.pieces_per_word, self.salt = pieces_per_word, salt
        self.model_max_length = max_length
        self.bos_token_id, self.eos_token_id, self.pad_token_id = bos, eos, pad
        self._strings = strings
        self.backend_tokenizer = SimpleNamespace(pre_tokenizer=None)  # not byte-level

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(set(self.specials.values()))

    def __len__(self) -> int:
        return self.size

    def get_vocab(self) -> dict[str, int]:
        return {self._strings(i): i for i in range(self.size)}

    def word_ids(self, word: str) -> list[int]:
        """The fixed ids of one word (a pure function of the word)."""
        rng = random.Random(zlib.crc32((self.salt + word).encode()))
        low, high = self.pieces_per_word
        special = set(self.specials.values())
        count, ids = rng.randint(low, high), []
        while len(ids) < count:
            candidate = rng.randrange(self.size)
            if candidate not in special:
                ids.append(candidate)
        return ids

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [i for word in text.split() for i in self.word_ids(word)]
        if add_special_tokens and self.bos_token_id is not None:
            ids = [self.bos_token_id] + ids
        if add_special_tokens and self.eos_token_id is not None:
            ids = ids + [self.eos_token_id]
        return ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Text for ids: one made-up word per token (which the other vocabulary's tokenizer splits its own way)."""
        special = set(self.specials.values()) if skip_special_tokens else set()
        return " ".join(f"x{int(i)}" for i in ids if int(i) not in special)

    def __call__(self, text, add_special_tokens: bool = True, padding=False, max_length: int | None = None,
                 truncation: bool = False, return_tensors: str | None = None):
        texts = [text] if isinstance(text, str) else list(text)
        rows = [self.encode(t, add_special_tokens) for t in texts]
        if truncation and max_length:
            rows = [r[:max_length - 1] + [r[-1]] if add_special_tokens and len(r) > max_length else r[:max_length] for r in rows]
        if padding == "max_length" and max_length:
            rows = [r + [self.pad_token_id] * (max_length - len(r)) for r in rows]
        ids = rows[0] if isinstance(text, str) else rows
        if return_tensors == "pt":
            ids = torch.tensor(ids, dtype=torch.long)
        return SimpleNamespace(input_ids=ids)


def llm_tokenizer(sizes: VocabularySizes) -> SyntheticTokenizer:
    """Llama-2-like: ids 0-2 are <unk> <s> </s>, the last two the photo markers; 1-3 tokens a word."""
    size = sizes.llm_vocab
    specials = {"unk": 0, "bos": 1, "eos": 2, "img": size - 2, "img_end": size - 1}
    matched = int(round(1 / max(sizes.exact_match_fraction, 1e-9)))

    def strings(i: int) -> str:
        # Every ``matched``-th token has text "t<i>", which is also CLIP token i's text (Eq. 8 pairs).
        return f"▁t{i}" if i % matched == 0 else f"▁u{i}"

    return SyntheticTokenizer(size=size, specials=specials, pieces_per_word=(1, 3), strings=strings, bos=1, pad=0, salt="llm")


def sd_tokenizer(sizes: VocabularySizes) -> SyntheticTokenizer:
    """CLIP-like: the last two ids are <|startoftext|> and <|endoftext|> (also the padding); 1-2 tokens a word."""
    size = sizes.sd_vocab
    bos, eos = size - 2, size - 1
    return SyntheticTokenizer(size=size, specials={"bos": bos, "eos": eos}, pieces_per_word=(1, 2), strings=lambda j: f"t{j}</w>",
                              max_length=sizes.sd_max_length, bos=bos, eos=eos, pad=eos, salt="sd")


def synthetic_captions(llm: SyntheticTokenizer, count: int, tokens_per_caption: int, seed: int = 0) -> list[CaptionTokens]:
    """``count`` captions of exactly ``tokens_per_caption`` LLM tokens each, in consecutive STGS rows."""
    rng = random.Random(seed)
    captions, row = [], 0
    for _ in range(count):
        words, ids = [], []
        while len(ids) < tokens_per_caption:
            word = f"w{rng.randrange(10**9)}"
            word_ids = llm.word_ids(word)
            if len(ids) + len(word_ids) <= tokens_per_caption:
                words.append(word)
                ids += word_ids
        captions.append(CaptionTokens(rows=list(range(row, row + len(ids))), llm_ids=ids, text=" ".join(words)))
        row += len(ids)
    return captions


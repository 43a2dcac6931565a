"""Tokenizers: the two tiny ones the project trains itself, and the photo markers on the LLM side.

The ``tiny`` preset needs an LLM tokenizer and a diffusion (CLIP) tokenizer that disagree the way
real ones do, so that the vocabulary bridge meets the real mismatch problem:

* LLM side: a SentencePiece-style **Unigram** model, case kept, word starts marked with ``▁``.
* Diffusion side: CLIP's byte-level **BPE**, lower-cased, word ends marked with ``</w>``, saved as a
  real ``CLIPTokenizer`` (vocab.json + merges.txt) in a Stable Diffusion ``tokenizer/`` folder.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable

from photodialog import IMG_END, IMG_START
from photodialog.errors import ConfigError

def _serial_training():
    """Train tokenizers on one thread: the parallel trainers give run-to-run different scores."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _rounded_unigram(tok):
    """The trained Unigram model with scores rounded to 1e-9 and ids in a fixed order: its EM
    sums in hash order, so the last digits of the scores otherwise differ from run to run."""
    # the Hugging Face stack is slow to import: only this path needs it
    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    specials = set(LLM_SPECIALS.values())
    vocab = [[piece, round(score, 9)] for piece, score in data["model"]["vocab"]]
    head = [entry for entry in vocab if entry[0] in specials]
    # Equal scores come out in hash order too: order by (score, piece) so ids are stable.
    rest = sorted((entry for entry in vocab if entry[0] not in specials), key=lambda e: (-e[1], e[0]))
    data["model"]["vocab"] = head + rest
    data["model"]["unk_id"] = [entry[0] for entry in head].index(LLM_SPECIALS["unk_token"])
    return Tokenizer.from_str(json.dumps(data))


def _canonical_bpe_vocab(tok, specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """BPE vocab with ids fixed by content: specials, sorted alphabet, then merges in order.

    The trainer collects its alphabet in a hash set, so its ids differ between processes;
    segmentation depends only on the merges, which this keeps.
    """
    merges = _bpe_merges(tok)
    merged = ["".join(pair) for pair in merges]
    alphabet = sorted(set(tok.get_vocab()) - set(specials) - set(merged))
    ordered = list(dict.fromkeys(specials + alphabet + merged))
    return {token: index for index, token in enumerate(ordered)}, merges


LLM_SPECIALS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"


def train_llm_tokenizer(texts: Iterable[str], vocab_size: int):
    """A Unigram tokenizer (Llama-like ``▁`` word starts) wrapped as a transformers fast tokenizer."""
    # the Hugging Face stack is slow to import: only this path needs it
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    _serial_training()
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    specials = list(LLM_SPECIALS.values())
    # No extra initial alphabet: the trainer scores unseen characters in hash order (unstable
    # ids), and characters absent from the training text could not be learnt anyway (<unk>).
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False)
    texts = list(texts)
    try:
        tok.train_from_iterator(texts, trainer=trainer)
    except Exception as err:  # the Rust trainer raises a bare Exception
        if "not large enough" not in str(err):
            raise
        needed = len(set("".join(texts)) - {" "}) + len(specials) + 1  # + the word-start mark
        raise ConfigError(f"'model.tiny.llm_vocab' ({vocab_size}) cannot hold the {needed} characters and special tokens "
                          f"of this training text; raise it ({needed} is enough)") from None
    tok = _rounded_unigram(tok)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=4096, **LLM_SPECIALS)


def train_llama_tokenizer(texts: Iterable[str], vocab_size: int):
    """A Llama-style tokenizer (SentencePiece BPE with byte fallback) as a real ``LlamaTokenizer``."""
    # the Hugging Face stack is slow to import: only this path needs it
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    _serial_training()
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(list(texts), trainer=trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    vocab, merges = _canonical_bpe_vocab(tok, specials)
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges)
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def train_clip_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int):
    """A CLIP-style BPE tokenizer trained on ``texts``, returned as a real ``CLIPTokenizer``.

    The merges are learnt by ``learn_bpe_merges`` (deterministic) on words split exactly as
    ``CLIPTokenizer`` splits them (lower-cased, byte-level characters, ``</w>`` at word ends).
    """
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import CLIPTokenizer

    splitter = CLIPTokenizer(vocab={CLIP_BOS: 0, CLIP_EOS: 1}, merges=[]).backend_tokenizer
    words: Counter[str] = Counter()
    for text in texts:
        normalized = splitter.normalizer.normalize_str(text)
        words.update(piece for piece, _ in splitter.pre_tokenizer.pre_tokenize_str(normalized))
    alphabet = sorted(pre_tokenizers_alphabet())
    word_ends = sorted({word[-1] + "</w>" for word in words})
    base = [CLIP_BOS, CLIP_EOS] + alphabet + word_ends
    merges = learn_bpe_merges(words, max(0, vocab_size - len(base)))
    vocab = {token: index for index, token in enumerate(dict.fromkeys(base + ["".join(m) for m in merges]))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def pre_tokenizers_alphabet() -> list[str]:
    """The 256 characters byte-level BPE maps bytes to (every byte is one of them)."""
    # the Hugging Face stack is slow to import: only this path needs it
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel.alphabet()


def learn_bpe_merges(words: Counter[str], count: int) -> list[tuple[str, str]]:
    """Up to ``count`` BPE merges over ``words`` (word -> frequency), word ends marked ``</w>``.

    The most frequent adjacent pair is merged first; ties go to the alphabetically first pair,
    so the same text always gives the same merges (the ``tokenizers`` trainer breaks ties by
    hash order, which changes from process to process).
    """
    sequences = {word: tuple(word[:-1]) + (word[-1] + "</w>",) for word in words if word}
    merges: list[tuple[str, str]] = []
    while len(merges) < count:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, symbols in sequences.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        sequences = {word: _merge(symbols, best) for word, symbols in sequences.items()}
    return merges


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def _bpe_merges(tok) -> list[tuple[str, str]]:
    """The learnt merges of a ``tokenizers`` BPE model, in order."""
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in json.loads(tok.to_str())["model"]["merges"]]


def add_photo_tokens(tokenizer) -> None:
    """Add ``[IMG]`` and ``[/IMG]`` as special tokens (no-op when present), and a pad token if missing."""
    present = set(tokenizer.get_vocab())
    missing = [t for t in (IMG_START, IMG_END) if t not in present]
    if missing:
        # the Hugging Face stack is slow to import: only this path needs it
        from tokenizers import AddedToken

        # Strip the spaces around the markers so "a [IMG] b" does not spend tokens on lone spaces.
        markers = [AddedToken(t, lstrip=True, rstrip=True, special=True, normalized=False) for t in missing]
        tokenizer.add_special_tokens({"additional_special_tokens": markers}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        # Llama-2 ships without a pad token; padded positions are masked, so unk serves.
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token


def normalized_token_strings(tokenizer) -> list[str]:
    """Each id's token as plain lower-case text, without word-boundary marks (for Eq. 8 matching).

    ``▁red`` (SentencePiece word start) and ``red</w>`` (CLIP word end) both become ``red``;
    CLIP's byte-level characters are decoded back to text. Special tokens become ``""`` and
    never match.
    """
    # the Hugging Face stack is slow to import: only this path needs it
    from tokenizers import decoders

    specials = set(tokenizer.all_special_ids)
    byte_level = _is_byte_level(tokenizer)
    decoder = decoders.ByteLevel() if byte_level else None
    strings = [""] * len(tokenizer)
    for token, index in tokenizer.get_vocab().items():
        if index in specials or index >= len(strings):
            continue
        text = token.replace("</w>", "").replace("▁", "")
        if decoder is not None:
            text = decoder.decode([text])
        strings[index] = text.strip().lower()
    return strings


def _is_byte_level(tokenizer) -> bool:
    pre = getattr(tokenizer.backend_tokenizer, "pre_tokenizer", None)
    return pre is not None and "ByteLevel" in repr(pre)

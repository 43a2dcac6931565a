"""Tokenizers: the two tiny ones the project trains itself, and the photo markers on the LLM side.

The ``tiny`` preset needs an LLM tokenizer and a diffusion (CLIP) tokenizer that disagree the way
real ones do, so that the vocabulary bridge meets the real mismatch problem:

* LLM side: a SentencePiece-style **Unigram** model, case kept, word starts marked with ``▁``.
* Diffusion side: CLIP's byte-level **BPE**, lower-cased, word ends marked with ``</w>``, saved as a
  real ``CLIPTokenizer`` (vocab.json + merges.txt) in a Stable Diffusion ``tokenizer/`` folder.
"""

from __future__ import annotations

from collections.abc import Iterable

from photodialog import IMG_END, IMG_START

LLM_SPECIALS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"


def train_llm_tokenizer(texts: Iterable[str], vocab_size: int):
    """A Unigram tokenizer (Llama-like ``▁`` word starts) wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    specials = list(LLM_SPECIALS.values())
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False,
        initial_alphabet=list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()"),
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=4096, **LLM_SPECIALS)


def train_llama_tokenizer(texts: Iterable[str], vocab_size: int):
    """A Llama-style tokenizer (SentencePiece BPE with byte fallback) as a real ``LlamaTokenizer``."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(list(texts), trainer=trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    tokenizer = LlamaTokenizer(vocab=model["vocab"], merges=merges)
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def train_clip_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int):
    """A CLIP-style BPE tokenizer trained on ``texts``, returned as a real ``CLIPTokenizer``."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token=CLIP_EOS))
    # The same normalisation and splitting as CLIPTokenizer, so the learnt merges apply there.
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[CLIP_BOS, CLIP_EOS], end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return CLIPTokenizer(vocab=tok.get_vocab(), merges=_bpe_merges(tok), model_max_length=max_length)


def _bpe_merges(tok) -> list[tuple[str, str]]:
    """The learnt merges of a ``tokenizers`` BPE model, in order."""
    import json

    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in json.loads(tok.to_str())["model"]["merges"]]


def add_photo_tokens(tokenizer) -> tuple[int, int]:
    """Add ``[IMG]`` and ``[/IMG]`` as special tokens (no-op when present); return their ids."""
    present = set(tokenizer.get_vocab())
    missing = [t for t in (IMG_START, IMG_END) if t not in present]
    if missing:
        from tokenizers import AddedToken

        # Strip the spaces around the markers so "a [IMG] b" does not spend tokens on lone spaces.
        markers = [AddedToken(t, lstrip=True, rstrip=True, special=True, normalized=False) for t in missing]
        tokenizer.add_special_tokens({"additional_special_tokens": markers}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        # Llama-2 ships without a pad token; padded positions are masked, so unk serves.
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer.convert_tokens_to_ids(IMG_START), tokenizer.convert_tokens_to_ids(IMG_END)


def normalized_token_strings(tokenizer) -> list[str]:
    """Each id's token as plain lower-case text, without word-boundary marks (for Eq. 8 matching).

    ``▁red`` (SentencePiece word start) and ``red</w>`` (CLIP word end) both become ``red``;
    CLIP's byte-level characters are decoded back to text. Special tokens become ``""`` and
    never match.
    """
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

"""The tiny tokenizers: different algorithms on the two sides, the photo markers, determinism."""

from __future__ import annotations

import subprocess
import sys

from photodialog.models.tokenizers import learn_bpe_merges, normalized_token_strings

SCRIPT = """
import hashlib, sys, tempfile
sys.path.insert(0, {tests!r})
from conftest import CORPUS
from photodialog.models.tokenizers import train_clip_tokenizer, train_llm_tokenizer
with tempfile.TemporaryDirectory() as d:
    train_llm_tokenizer(CORPUS * 20, 200).save_pretrained(d + "/a")
    train_clip_tokenizer(CORPUS * 20, 300, 24).save_pretrained(d + "/b")
    print(hashlib.md5(open(d + "/a/tokenizer.json", "rb").read() + open(d + "/b/tokenizer.json", "rb").read()).hexdigest())
"""


def test_training_is_identical_in_separate_processes():
    """Same text, same tokenizers, bit for bit (so a run is reproducible from its seed)."""
    from pathlib import Path

    script = SCRIPT.format(tests=str(Path(__file__).parent))
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout for _ in range(3)}
    assert len(digests) == 1


def test_the_two_sides_really_disagree(tokenizers):
    llm, sd = tokenizers
    assert llm.tokenize("a red car") != sd.tokenize("a red car")
    assert any(t.startswith("▁") for t in llm.tokenize("a red car"))
    assert any(t.endswith("</w>") for t in sd.tokenize("a red car"))
    assert sd.tokenize("Red car") == sd.tokenize("red car")  # CLIP lower-cases
    word_end = next(t for t in sd.get_vocab() if t.endswith("</w>") and len(t) > 6)
    assert normalized_token_strings(sd)[sd.convert_tokens_to_ids(word_end)] == word_end[:-4]


def test_photo_markers_are_single_special_tokens(tokenizers):
    llm, _ = tokenizers
    ids = llm("look [IMG] a red car [/IMG] nice", add_special_tokens=False).input_ids
    assert ids.count(llm.convert_tokens_to_ids("[IMG]")) == 1
    assert ids.count(llm.convert_tokens_to_ids("[/IMG]")) == 1


def test_bpe_merges_prefer_frequent_then_alphabetical_pairs():
    from collections import Counter

    merges = learn_bpe_merges(Counter({"ab": 3, "cd": 3, "ce": 1}), 2)
    assert merges == [("a", "b</w>"), ("c", "d</w>")]

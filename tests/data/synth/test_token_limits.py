"""The recipes' token limits hold every gold photo reply of the default world: a limit below it
cuts the caption (the model then learns to share photos without saying what they show)."""

from __future__ import annotations

import pytest

from photodialog.config import load_config
from photodialog.warm_start import BUNDLED_TEXT


@pytest.fixture(scope="module")
def longest_photo_reply(tmp_path_factory):
    """Tokens (with </s>) of the longest photo-sharing reply of a 600-dialogue world, by the shipped tokenizer."""
    from transformers import AutoTokenizer

    from photodialog.data.loading import load_dialogues
    from photodialog.data.samples import build_samples
    from photodialog.data.synth import write_world

    world = tmp_path_factory.mktemp("limits") / "world"
    write_world(world, dialogues=600, seed=5, image_size=16, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_TEXT / "llm")
    replies = [s.response.text for split in ("train", "dev", "test")
               for s in build_samples(load_dialogues(world, split)) if s.response.photos]
    assert len(replies) > 300
    return max(len(tokenizer(text)["input_ids"]) + 1 for text in replies)


@pytest.mark.parametrize("recipe", ["tiny-pretrain-text", "tiny-finetune", "tiny-e2e"])
def test_every_photo_reply_fits_the_training_and_generation_limits(recipe, longest_photo_reply):
    config = load_config(recipe)
    assert longest_photo_reply <= config.model.max_response_tokens
    assert longest_photo_reply <= config.eval.max_new_tokens

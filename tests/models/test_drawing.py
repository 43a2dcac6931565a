"""Drawing photos (ImageGenerator.generate): the seed alone decides a photo, whatever the layout,
the batch or the samplers used before; the channels-last layout changes speed, not photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photodialog.models.image_generator import ImageGenerator
from photodialog.models.pretrained import load_diffusion
from photodialog.models.tiny_generator import BUNDLED_GENERATOR

CAPTIONS = ["a red car at the beach", "a blue house in the forest", "a green dog in the city", "a yellow boat in the snow"]
DRAW = {"steps": 4, "guidance_scale": 3.0, "sampler": "dpm"}  # the demo's settings (tiny-finetune's eval)


@pytest.fixture()
def generator() -> ImageGenerator:
    text_encoder, unet, vae, scheduler, tokenizer = load_diffusion(str(BUNDLED_GENERATOR))
    return ImageGenerator(text_encoder.eval(), unet.eval(), scheduler, tokenizer, vae=vae.eval())


def pixels(photos) -> np.ndarray:
    return np.stack([np.asarray(p, dtype=np.int16) for p in photos])


def test_channels_last_draws_the_photos_the_plain_layout_draws_and_goes_back_to_a_saveable_one(generator):
    plain = pixels(generator.generate(CAPTIONS, seed=5, **DRAW))
    weights = {k: v.clone() for k, v in generator.unet.state_dict().items()}
    generator.set_memory_format(torch.channels_last)
    assert generator.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert generator.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    fast = pixels(generator.generate(CAPTIONS, seed=5, **DRAW))
    # another convolution kernel sums in another order: at most one level of 255 apart, almost always equal
    assert np.abs(fast - plain).max() <= 1 and (fast == plain).mean() > 0.99
    generator.set_memory_format(torch.contiguous_format)
    assert all(v.is_contiguous() for v in generator.unet.state_dict().values())  # what safetensors can save
    assert all(torch.equal(v, weights[k]) for k, v in generator.unet.state_dict().items())


def test_the_same_seed_draws_the_same_photo_whatever_samplers_drew_before(generator):
    first = pixels(generator.generate(CAPTIONS[:1], seed=3, **DRAW))
    generator.generate(CAPTIONS[:1], steps=3, guidance_scale=2.0, sampler="ddpm", seed=9)  # stochastic: adds noise each step
    generator.generate(CAPTIONS[:1], steps=2, guidance_scale=1.0, sampler="dpm", seed=4)  # the same sampler, other steps
    assert np.array_equal(pixels(generator.generate(CAPTIONS[:1], seed=3, **DRAW)), first)
    assert not np.array_equal(pixels(generator.generate(CAPTIONS[:1], seed=4, **DRAW)), first)


def test_a_photo_does_not_depend_on_the_other_captions_of_its_batch(generator):
    """The first caption of a batch gets the seed's first noise, as it would alone; the empty
    caption guidance needs is encoded once per batch."""
    batch = pixels(generator.generate(CAPTIONS, seed=2, **DRAW))
    alone = pixels(generator.generate(CAPTIONS[:1], seed=2, **DRAW))
    assert np.abs(batch[0] - alone[0]).max() <= 1


def test_hidden_states_given_instead_of_texts_draw_the_texts_photos(generator):
    """The bridge's path: the text encoder's hidden states come in, the empty caption's are made here."""
    hidden = generator.encode_text(CAPTIONS[:2])
    by_hidden = pixels(generator.generate([], text_hidden=hidden, seed=1, **DRAW))
    by_text = pixels(generator.generate(CAPTIONS[:2], seed=1, **DRAW))
    assert np.abs(by_hidden - by_text).max() <= 1


def test_small_latents_draw_on_native_convolutions_and_the_setting_comes_back(generator):
    from photodialog.models.image_generator import _convolutions_for

    seen = []
    original = generator.unet.forward
    generator.unet.forward = lambda *a, **k: (seen.append(torch.backends.mkldnn.enabled), original(*a, **k))[1]
    generator.generate(CAPTIONS[:1], seed=0, **DRAW)
    assert seen == [False] * DRAW["steps"] and torch.backends.mkldnn.enabled  # 2 x 8 x 8 x 8 latents: native
    seen.clear()
    generator.generate(CAPTIONS, seed=0, **DRAW)
    assert seen == [True] * DRAW["steps"]  # several photos: oneDNN, faster for batches
    with _convolutions_for(torch.zeros(1, 4, 64, 64), widest=320):
        assert torch.backends.mkldnn.enabled  # a paper-size UNet keeps oneDNN
    with pytest.raises(RuntimeError), _convolutions_for(torch.zeros(1, 8, 8, 8), widest=32):
        raise RuntimeError("a failed draw")
    assert torch.backends.mkldnn.enabled


def test_native_and_onednn_convolutions_draw_the_same_photos(generator, monkeypatch):
    from photodialog.models import image_generator

    native = pixels([generator.generate([caption], seed=7, **DRAW)[0] for caption in CAPTIONS])
    monkeypatch.setattr(image_generator, "SMALL_CONVOLUTION_INPUT", 0)  # every input is "large": oneDNN
    onednn = pixels([generator.generate([caption], seed=7, **DRAW)[0] for caption in CAPTIONS])
    assert np.abs(native - onednn).max() <= 1 and (native == onednn).mean() > 0.99

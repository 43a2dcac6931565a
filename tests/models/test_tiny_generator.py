"""The bundled tiny generator: a real Stable Diffusion folder, the recipes' sizes, draws what captions say; wrong sizes are refused."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from photodialog.config import load_config
from photodialog.errors import ConfigError
from photodialog.models.tiny import save_tiny_diffusion
from photodialog.models.tiny_generator import BUNDLED_GENERATOR

DEMO_RECIPES = ("tiny-pretrain-text", "tiny-finetune")


def test_the_bundled_folder_is_what_its_record_says():
    record = json.loads((BUNDLED_GENERATOR / "training.json").read_text())
    for name, digest in record["sha256"].items():
        assert hashlib.sha256((BUNDLED_GENERATOR / name).read_bytes()).hexdigest() == digest
    index = json.loads((BUNDLED_GENERATOR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert {"text_encoder", "tokenizer", "unet", "scheduler", "vae"} <= set(index)


@pytest.mark.parametrize("recipe", DEMO_RECIPES)
def test_the_demo_recipes_start_from_it_and_their_sizes_fit_it(recipe, tmp_path):
    sizes = load_config(recipe).model.tiny
    assert sizes.diffusion_source == "bundled"
    save_tiny_diffusion(tmp_path / "sd", ["ignored: the bundled tokenizer comes along"], sizes, latent=sizes.latent)
    for part in ("unet", "text_encoder", "tokenizer", "vae"):
        assert (tmp_path / "sd" / part).is_dir()
    unet = tmp_path / "sd" / "unet" / "diffusion_pytorch_model.safetensors"
    assert unet.read_bytes() == (BUNDLED_GENERATOR / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_the_recipe_that_makes_it_starts_from_random_weights_of_the_same_sizes():
    """The pretraining recipe builds a new generator; the demo's recipes load its result: same sizes."""
    made = load_config("tiny-pretrain-generator").model.tiny
    used = load_config("tiny-finetune").model.tiny
    assert made.diffusion_source == "random"
    keys = ("text_encoder_hidden", "text_encoder_layers", "unet_channels", "unet_attention", "unet_addition_embed_type",
            "latent", "latent_channels", "vae_channels", "image_size")
    assert {k: getattr(made, k) for k in keys} == {k: getattr(used, k) for k in keys}


def test_it_is_measured_and_pretrained_with_the_sampler_settings_the_demo_draws_with():
    from photodialog.demo.plan import make_plan

    made, used = load_config("tiny-pretrain-generator").eval, load_config("tiny-finetune").eval
    assert (made.sampler, made.diffusion_steps, made.guidance_scale) == (used.sampler, used.diffusion_steps, used.guidance_scale)
    assert make_plan(3, ["end-to-end"], quick=False).diffusion_steps == used.diffusion_steps


def test_other_sizes_or_a_folder_that_is_not_stable_diffusion_are_refused_with_the_keys(tmp_path):
    sizes = load_config("tiny-finetune", ["model.tiny.unet_channels=[32, 64]", "model.tiny.unet_attention=[false, true]"]).model.tiny
    with pytest.raises(ConfigError, match=r"unet_channels=\[32, 64, 64\].*diffusion_source=random"):
        save_tiny_diffusion(tmp_path / "sd", [], sizes, latent=True)
    not_sd = load_config("tiny-finetune", [f"model.tiny.diffusion_source={tmp_path}"]).model.tiny
    with pytest.raises(ConfigError, match="not a Stable Diffusion folder"):
        save_tiny_diffusion(tmp_path / "sd2", [], not_sd, latent=True)
    assert not (tmp_path / "sd").exists() and not (tmp_path / "sd2").exists()


def test_it_draws_the_colour_the_caption_names():
    """Photos drawn from 'a red ...' are redder than those from 'a blue ...' (the probe's full
    accuracy is `photodialog bench generator`'s; this is a fast check that the shipped weights are
    the trained ones, read through the captions)."""
    from photodialog.bench.generator import Sampling
    from photodialog.data.synth import OBJECTS, Triple, caption_for
    from photodialog.models.image_generator import ImageGenerator, image_to_tensor
    from photodialog.models.pretrained import load_diffusion

    text_encoder, unet, vae, scheduler, tokenizer = load_diffusion(str(BUNDLED_GENERATOR))
    generator = ImageGenerator(text_encoder.eval(), unet.eval(), scheduler, tokenizer, vae=vae.eval())
    sampling = Sampling.of(load_config("tiny-finetune"))

    def mean_rgb(colour: str) -> torch.Tensor:
        photos = sampling.draw(generator, [caption_for(Triple(thing, colour, "beach")) for thing in OBJECTS], seed=1)
        return torch.stack([image_to_tensor(p, 32) for p in photos]).mean(dim=(0, 2, 3))

    red, blue = mean_rgb("red"), mean_rgb("blue")
    assert red[0] - red[2] > blue[0] - blue[2] + 0.1

"""The tiny preset's VAE: the bundled one reads the world's photos back, a trained one learns, a wrong one is refused."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from photodialog.config import TinySizes
from photodialog.errors import ConfigError
from photodialog.models.tiny import save_tiny_diffusion
from photodialog.models.tiny_vae import BUNDLED_VAE, rebuild_bundled, tiny_vae_model, train_vae

BUNDLED_SIZES = dict(image_size=32, latent=True, latent_channels=8, vae_channels=[32, 64, 64])


def _test_photos(world, size=32):
    from photodialog.data.photos import load_photo
    from photodialog.data.synth.world import load_world
    from photodialog.models.image_generator import image_to_tensor

    photos = load_world(world).photos("test")
    return torch.stack([image_to_tensor(load_photo(p.path), size) for p in photos]), [p.triple.caption for p in photos]


def test_the_bundled_vae_reconstructs_photos_of_a_world_it_never_saw(tmp_path):
    """Photos of another seed's world come back close to the photos (the demo's probe reads the
    world's test photos back with object 98%, colour 99.5%, scene 100% right: training.json's command)."""
    from diffusers import AutoencoderKL

    from photodialog.data.synth import write_world

    write_world(tmp_path / "world", dialogues=80, seed=7, image_size=64, progress=False)
    pixels, _ = _test_photos(tmp_path / "world")
    vae = AutoencoderKL.from_pretrained(BUNDLED_VAE).eval()
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
        decoded = vae.decode(latents).sample.clamp(-1, 1)
    assert latents.shape[1:] == (8, 8, 8)  # 32 px -> 8 x 8 x 8
    record = json.loads((BUNDLED_VAE / "training.json").read_text())
    error = torch.nn.functional.mse_loss(decoded, pixels).item()
    assert error < 3 * record["reconstruction_mse"] < 0.02  # close to its training photos' error
    # each photo's mean colour (the object's colour weighs in it) survives
    assert (decoded.mean(dim=(2, 3)) - pixels.mean(dim=(2, 3))).abs().max() < 0.1
    assert record["sha256"] == hashlib.sha256((BUNDLED_VAE / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()


def test_training_lowers_the_reconstruction_error_and_sets_unit_variance_latents():
    torch.manual_seed(0)
    sizes = TinySizes(image_size=16, latent=True, latent_channels=4, vae_channels=[8, 16])
    # blocky photos: compressible, as real ones are (pure noise is not)
    images = torch.nn.functional.interpolate(torch.rand(24, 3, 4, 4) * 2 - 1, size=16, mode="nearest")
    vae = tiny_vae_model(sizes)
    with torch.no_grad():
        before = torch.nn.functional.mse_loss(vae.decode(vae.encode(images).latent_dist.mean).sample, images).item()
    stats = train_vae(vae, images, steps=100, batch_size=8, lr=3e-3)
    assert stats["reconstruction_mse"] < 0.6 * before
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
    assert latents.std().item() == pytest.approx(1.0, rel=1e-4)


def test_a_vae_of_other_sizes_is_refused_with_the_keys_to_change(tmp_path):
    sizes = TinySizes(**{**BUNDLED_SIZES, "latent_channels": 4, "vae_source": "bundled"})
    with pytest.raises(ConfigError, match="latent_channels"):
        save_tiny_diffusion(tmp_path / "sd", ["a red ball"], sizes, latent=True)
    with pytest.raises(ConfigError, match="not an AutoencoderKL folder"):
        save_tiny_diffusion(tmp_path / "sd2", ["a red ball"], TinySizes(**{**BUNDLED_SIZES, "vae_source": str(tmp_path)}), latent=True)


@pytest.mark.slow
def test_the_documented_command_rebuilds_the_bundled_vae_bit_for_bit(tmp_path):
    """Minutes of one CPU thread; the same bytes on the same torch version and CPU kind."""
    from photodialog.devices import made_elsewhere

    shipped = json.loads((BUNDLED_VAE / "training.json").read_text())
    if reason := made_elsewhere(shipped):
        pytest.skip(f"the shipped VAE cannot be rebuilt bit for bit here: {reason}")
    record = rebuild_bundled(tmp_path / "tiny-vae", progress=False)
    assert record["sha256"] == shipped["sha256"]

"""The tiny preset's VAE: trained on the dataset's photos, or the bundled one, and how to rebuild it.

A randomly initialised VAE encodes nothing meaningful, so a latent tiny generator needs one that
was trained. ``train_vae`` fits a small ``diffusers.AutoencoderKL`` (Stable Diffusion's VAE class)
to training photos with the usual objective, reconstruction MSE plus a small KL term (Rombach et
al., 2022, with no adversarial or perceptual loss at this size), then sets ``scaling_factor`` so
that latents have unit variance, as SD's config does. The VAE sits in the Stable Diffusion
folder's ``vae/`` and is frozen from then on, like SD's.

``model.tiny.vae_source`` says where a base's VAE comes from: ``train`` runs ``train_vae`` on the
run's photos when the base parts are made; ``bundled`` copies the one shipped in
``photodialog/assets/tiny-sd/vae`` (2,500 steps on the demo world's 1,600 training photos: on the
test photos its reconstructions keep the probe's object 98%, colour 99.5% and scene 100% right),
which ``photodialog assets rebuild vae --out DIR`` rebuilds bit for bit (same torch
version and CPU kind). Why bundled: a good VAE takes 2,500 steps (about 11 minutes of one
thread), too long for the demo's generator share; 500 steps left colours wrong 27% of the time.

Why latent: at 32 px a pixel-space UNet costs about ten times more per sample than one on the
8 x 8 latents, and the generator's pretraining must fit a few minutes of one CPU thread.

Deterministic for a seed on CPU (one thread): its own ``torch.Generator`` for batches and the
latent sample, and the global RNG left as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from photodialog.config import TinySizes
from photodialog.data.photos import load_photo
from photodialog.devices import made_on, torch_threads
from photodialog.data.synth import ensure_world
from photodialog.data.synth.world import load_world
from photodialog.models.image_generator import image_to_tensor

KL_WEIGHT = 1e-6  # SD's VAE scale: the latent stays close to a deterministic code
# The VAE shipped with photodialog (``model.tiny.vae_source=bundled``), trained on the default
# synthetic world's training photos; ``photodialog assets rebuild vae --out DIR`` rebuilds it.
BUNDLED_VAE = Path(__file__).resolve().parent.parent / "assets" / "tiny-sd" / "vae"
BUNDLED_STEPS = 2500
BUNDLED_WORLD = {"dialogues": 2000, "seed": 0, "image_size": 64}  # `photodialog demo`'s world


def tiny_vae_model(sizes: TinySizes):
    """A random ``AutoencoderKL`` of ``sizes`` (block widths ``vae_channels``, ``latent_channels``, no mid attention)."""
    # the Hugging Face stack is slow to import: only this path needs it
    from diffusers import AutoencoderKL

    channels = list(sizes.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=sizes.latent_channels, block_out_channels=channels,
        down_block_types=["DownEncoderBlock2D"] * len(channels), up_block_types=["UpDecoderBlock2D"] * len(channels),
        norm_num_groups=8, sample_size=sizes.image_size, mid_block_add_attention=False,  # attention costs most at this size
    )


def train_vae(vae, images: torch.Tensor, *, steps: int, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
              progress: bool = False) -> dict:
    """Fit ``vae`` to ``images`` ([N, 3, S, S] in [-1, 1]) for ``steps`` AdamW steps; set its scaling factor.

    Cosine learning-rate decay after a short warmup. Returns ``{"reconstruction_mse", "scaling_factor"}``
    measured on ``images`` after training (MSE on the [-1, 1] scale). Raises ``ValueError`` without images.
    """
    if images.shape[0] == 0:
        raise ValueError("the VAE needs training photos, and none were given")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    vae.train()
    bar = _bar(steps, progress)
    for step in range(steps):
        batch = images[torch.randint(0, images.shape[0], (min(batch_size, images.shape[0]),), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        loss = F.mse_loss(vae.decode(latents).sample, batch) + KL_WEIGHT * posterior.kl().mean()
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / steps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    if bar is not None:
        bar.close()
    vae.eval()
    return _finish(vae, images)


@torch.no_grad()
def _finish(vae, images: torch.Tensor) -> dict:
    means, errors = [], []
    for start in range(0, images.shape[0], 256):
        chunk = images[start:start + 256]
        mean = vae.encode(chunk).latent_dist.mean
        means.append(mean)
        errors.append(F.mse_loss(vae.decode(mean).sample.clamp(-1, 1), chunk, reduction="sum"))
    latents = torch.cat(means)
    scaling = 1.0 / float(latents.std())
    vae.register_to_config(scaling_factor=scaling)
    return {"reconstruction_mse": float(sum(errors) / images.numel()), "scaling_factor": scaling}


def _bar(steps: int, enabled: bool):
    if not enabled:
        return None
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="train the tiny VAE", unit="step", dynamic_ncols=True)


def rebuild_bundled(out: Path, world: Path | None = None, steps: int = BUNDLED_STEPS, progress: bool = True) -> dict:
    """Train the bundled VAE from scratch on the default world's training photos and save it to ``out``.

    One CPU thread, seed 0: on the same torch version and CPU kind the saved weights are the same
    bytes as the shipped ones (``diffusion_pytorch_model.safetensors``'s SHA-256 is in ``training.json``).
    """
    sizes = TinySizes(image_size=32, latent=True, latent_channels=8)
    world = world or out.parent / "world"
    ensure_world(world, progress=progress, **BUNDLED_WORLD)
    photos = torch.stack([image_to_tensor(load_photo(p.path), sizes.image_size) for p in load_world(world).photos("train")])
    with torch_threads(1):  # one thread: the same sums in the same order on every machine
        torch.manual_seed(0)
        vae = tiny_vae_model(sizes)
        stats = train_vae(vae, photos, steps=steps, progress=progress)
    vae.save_pretrained(out)
    weights = out / "diffusion_pytorch_model.safetensors"
    record = {"photos": int(photos.shape[0]), "steps": steps, "world": BUNDLED_WORLD, **stats,
              "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
              **made_on(),  # the same bytes only on the same CPU kind and torch version
              "command": f"photodialog assets rebuild vae --out {out}"}
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record

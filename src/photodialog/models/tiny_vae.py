"""Training the tiny preset's VAE on the dataset's own photos, once, when its base parts are made.

A randomly initialised VAE encodes nothing meaningful, so a latent tiny generator needs one that
was trained: this stage fits a small ``diffusers.AutoencoderKL`` (Stable Diffusion's VAE class)
to the training photos with the usual objective, reconstruction MSE plus a small KL term
(Rombach et al., 2022, with no adversarial or perceptual loss at this size), then sets
``scaling_factor`` so that latents have unit variance, as SD's config does. The result is saved
in the Stable Diffusion folder's ``vae/`` and is frozen from then on, like SD's.

Why latent: at 32 px a pixel-space UNet costs about ten times more per sample than one on the
8 x 8 latents (``photodialog bench generator`` compares the two), and the generator's
pretraining must fit a few minutes of one CPU thread.

Deterministic for a seed on CPU (one thread): its own ``torch.Generator`` for batches and the
latent sample, and the global RNG left as it was.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KL_WEIGHT = 1e-6  # SD's VAE scale: the latent stays close to a deterministic code


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

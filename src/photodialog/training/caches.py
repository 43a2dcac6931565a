"""Outputs of frozen parts cached per photo: computed once, reused every epoch, the same loss.

Two caches (``train.cache_frozen``, on by default; ``enable_frozen_caches``):

* **VAE latents of target photos** (the VAE is frozen in every recipe). Stored: the mean and std
  of the VAE's latent distribution. Each step still draws its sample ``mean + std * noise`` with
  the noise call of ``DiagonalGaussianDistribution.sample`` (same shape, dtype, device and random
  stream), so the loss is the one the VAE would give: only the encoder's work is saved.
* **Perceptron features of context photos**: the frozen ViT's output, or the Q-Former's too when
  it is frozen, its query tokens are frozen and it has no dropout (BLIP-2's Q-Former has 0.1, so
  with the published weights the ViT's output is cached and the Q-Former runs every step). The
  projection into the LLM always runs: it is new and trains.

A part is cached only when it cannot change between steps: no trainable parameter (LoRA counts
as training) and no dropout (an ``nn.Dropout`` with p > 0 or a ``*dropout*`` config value > 0).
The loss is bitwise the same when an entry was computed in a batch of the same composition;
otherwise within float rounding (a convolution or matmul kernel may take another path for another
batch size); so a resumed run, which encodes its photos again in other batches, matches an
uninterrupted one within float rounding, not bit for bit (``train.cache_frozen=false`` for that). Entries live in host memory, up to ``train.cache_max_gb`` for both caches together;
past that, a photo's output is computed every time, as without the cache.
Memory per photo: SD-2.1's VAE at 512 px, 2 x 4 x 64 x 64 values (64 KiB in bf16); BLIP-2's
ViT-g at 224 px, 257 x 1408 values (707 KiB in bf16).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)


class Budget:
    """Bytes the caches may hold together."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.used = int(max_bytes), 0
        self.warned = False

    def take(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` of cache memory; False (with one warning) when it would exceed ``max_bytes``."""
        if self.used + nbytes > self.max_bytes:
            if not self.warned:
                log.warning("frozen-output caches full (%.1f GB, train.cache_max_gb): further photos are computed every step",
                            self.used / 1e9)
                self.warned = True
            return False
        self.used += nbytes
        return True


class PhotoCache:
    """Tensors per photo key, in host memory; ``lookup`` computes only the photos it lacks."""

    def __init__(self, budget: Budget):
        self.budget, self.store = budget, {}
        self.hits = self.misses = 0

    def lookup(self, keys: list[str], compute: Callable[[list[int]], tuple[torch.Tensor, ...]], device) -> tuple[torch.Tensor, ...]:
        """Outputs for ``keys`` stacked in their order; ``compute(rows)`` gives those of the missing rows.
        An empty key (a blank stand-in photo) is computed and never stored."""
        missing = [i for i, key in enumerate(keys) if not key or key not in self.store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        computed = compute(missing) if missing else ()
        position = {row: j for j, row in enumerate(missing)}
        for row, j in position.items():
            key = keys[row]
            if key and key not in self.store:
                entry = tuple(t[j].detach().to("cpu", copy=True) for t in computed)
                if self.budget.take(sum(t.numel() * t.element_size() for t in entry)):
                    self.store[key] = entry
        if len(missing) == len(keys):
            return tuple(computed)
        columns = []
        for k in range(len(computed) if computed else len(next(iter(self.store.values())))):
            rows = [computed[k][position[i]] if i in position else self.store[keys[i]][k].to(device, non_blocking=True)
                    for i in range(len(keys))]
            columns.append(torch.stack(rows))
        return tuple(columns)


class LatentCache:
    """VAE latent distributions of target photos; ``model_space`` draws a fresh sample each step."""

    def __init__(self, generator, budget: Budget):
        self.generator, self.photos = generator, PhotoCache(budget)

    def model_space(self, images: torch.Tensor, keys: list[str]) -> torch.Tensor:
        """What ``ImageGenerator.to_model_space(images)`` returns, with the encoder run only for new photos."""
        # the Hugging Face stack is slow to import: only this path needs it
        from diffusers.utils.torch_utils import randn_tensor

        vae = self.generator.vae

        def encode(rows):
            with torch.no_grad():
                dist = vae.encode(images[rows].to(vae.dtype)).latent_dist
            return dist.mean, dist.std

        mean, std = self.photos.lookup(keys, encode, images.device)
        # DiagonalGaussianDistribution.sample: the same draw from the same stream.
        latents = mean + std * randn_tensor(mean.shape, generator=None, device=mean.device, dtype=mean.dtype)
        return (latents - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor


class PerceptronCache:
    """The frozen stages' output of context photos (``stage``: ``vision`` or ``query``)."""

    def __init__(self, stage: str, budget: Budget):
        self.stage, self.photos = stage, PhotoCache(budget)

    def embed(self, perceptron, pixels: torch.Tensor, keys: list[str]) -> torch.Tensor:
        """What ``perceptron(pixels)`` returns, with the frozen stages run only for new photos."""
        def frozen(rows):
            with torch.no_grad():
                features = perceptron.vision_features(pixels[rows])
                return (perceptron.query_features(features) if self.stage == "query" else features,)

        (features,) = self.photos.lookup(keys, frozen, pixels.device)
        if self.stage == "vision":
            features = perceptron.query_features(features)
        return perceptron.project(features)


def trains(module: nn.Module) -> bool:
    """True when any parameter of ``module`` gets a gradient."""
    return any(p.requires_grad for p in module.parameters())


def has_dropout(module: nn.Module) -> bool:
    """A dropout anywhere in ``module``: a Dropout layer with p > 0, or a ``*dropout*`` number > 0 kept
    as a module attribute (attention code passes it to a functional dropout) or in a config."""
    for sub in module.modules():
        if isinstance(sub, nn.modules.dropout._DropoutNd) and sub.p > 0:
            return True
        config = getattr(sub, "config", None)
        values = dict(config.to_dict() if hasattr(config, "to_dict") else config if isinstance(config, dict) else {})
        values.update(vars(sub))
        if any("dropout" in k and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for k, v in values.items()):
            return True
    return False


def perceptron_stage(perceptron) -> str | None:
    """How far the perceptron's output stays the same from step to step: ``query``, ``vision`` or None."""
    if trains(perceptron.vision_model) or has_dropout(perceptron.vision_model):
        return None
    if trains(perceptron.qformer) or perceptron.query_tokens.requires_grad or has_dropout(perceptron.qformer):
        return "vision"
    return "query"


def enable_frozen_caches(model, max_bytes: int) -> dict[str, str]:
    """Attach the caches that apply to ``model`` (a PhotoDialogModel); returns what is cached, by cache."""
    budget, enabled = Budget(max_bytes), {}
    generator = model.generator
    if generator is not None and generator.vae is not None and not trains(generator.vae) and not has_dropout(generator.vae):
        model.latent_cache = LatentCache(generator, budget)
        enabled["latents"] = "VAE latent mean and std of target photos"
    stage = perceptron_stage(model.perceptron) if model.perceptron is not None else None
    if stage is not None:
        model.perceptron_cache = PerceptronCache(stage, budget)
        enabled["perceptron"] = "ViT + Q-Former output" if stage == "query" else "ViT output (the Q-Former trains or has dropout)"
    return enabled

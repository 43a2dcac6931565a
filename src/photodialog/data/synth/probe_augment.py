"""Training augmentation of the probe: what generated photos look like next to rendered ones.

A tiny diffusion model draws blurry, noisy photos with slightly-off colours and positions; the
probe must read those as well as the crisp rendered ones, so every training batch is flipped,
shifted, colour-jittered, blurred, sometimes pixelated, and noised, per image, from a
``torch.Generator`` (deterministic for its seed).
"""

from __future__ import annotations


def augment(x, generator):
    """Flips, shifts, colour jitter, blur, pixelation and noise, per image (x in [0, 1])."""
    # torch is slow to import: only this path needs it
    import torch
    from torch.nn import functional as F

    n, _, size, _ = x.shape

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(*shape, generator=generator)

    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    x = _shift(x, max(1, size // 10), generator)
    gain = uniform(0.85, 1.15, n, 1, 1, 1) * uniform(0.93, 1.07, n, 3, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(0.8, 1.2, n, 1, 1, 1) + mean
    x = x * gain
    x = _blur(x, uniform(0.0, 1.3, n))
    pixelate = torch.rand(n, generator=generator) < 0.2
    if pixelate.any():
        small = F.interpolate(x[pixelate], scale_factor=0.5, mode="bilinear", align_corners=False)
        x[pixelate] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    x = x + torch.randn(x.shape, generator=generator) * uniform(0.0, 0.08, n, 1, 1, 1)
    return x.clamp(0.0, 1.0)


def _shift(x, max_shift: int, generator):
    """Shift each image by up to ``max_shift`` pixels, filling with the replicated border."""
    # torch is slow to import: only this path needs it
    import torch
    from torch.nn import functional as F

    n, _, size, _ = x.shape
    padded = F.pad(x, [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + size, dx:dx + size]
                        for i, (dy, dx) in enumerate(offsets.tolist())])


def _blur(x, sigmas):
    """Gaussian blur with a per-image sigma (0 leaves the image as it is)."""
    # torch is slow to import: only this path needs it
    import torch
    from torch.nn import functional as F

    n, c, size, _ = x.shape
    radius = 3
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    sig = sigmas.clamp(min=1e-3)[:, None]
    kernel = torch.exp(-0.5 * (taps[None, :] / sig) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [n, taps]
    kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per (image, channel)
    flat = x.reshape(1, n * c, size, size)
    flat = F.pad(flat, [radius] * 4, mode="replicate")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, size, size)

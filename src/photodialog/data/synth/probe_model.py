"""The probe's network and how photos become its input (see ``probe.py`` for the probe itself)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from photodialog.data.photos import as_rgb, load_photo
from photodialog.data.synth.attributes import KINDS


@dataclass
class ProbeConfig:
    """What a probe classifies and how it is built."""

    objects: list[str]
    colours: list[str]
    scenes: list[str]
    image_size: int = 32
    widths: tuple[int, ...] = (24, 48, 96)  # conv channels per stage; the last is the feature size
    convs_per_stage: tuple[int, ...] = (1, 2, 2)

    @property
    def feature_dim(self) -> int:
        """Width of the probe's feature vector (the last convolution's channels; probe-FID's space)."""
        return self.widths[-1]

    def classes(self, kind: str) -> list[str]:
        """The class names of one head: ``object``, ``colour`` or ``scene``."""
        return {"object": self.objects, "colour": self.colours, "scene": self.scenes}[kind]


def read_rgb(path: str | Path) -> Image.Image:
    """An image file as RGB, fully read (so the file is closed at once), by the one decode path."""
    return load_photo(path)


def images_to_tensor(images: list[Image.Image], size: int):
    """A float tensor ``[N, 3, size, size]`` in [0, 1] (RGB, bilinear resize)."""
    # torch is slow to import: only this path needs it
    import torch

    arrays = []
    for image in images:
        image = as_rgb(image)
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(image, dtype=np.float32) / 255.0)
    if not arrays:
        return torch.zeros((0, 3, size, size))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def build_network(config: ProbeConfig):
    """Conv stages (conv-BN-ReLU, max-pool), global average pool, one linear head per attribute."""
    # torch is slow to import: only this path needs it
    import torch
    from torch import nn

    class ProbeNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 3
            for width, convs in zip(config.widths, config.convs_per_stage):
                for _ in range(convs):
                    layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                    channels = width
                layers.append(nn.MaxPool2d(2))
            self.trunk = nn.Sequential(*layers)
            self.heads = nn.ModuleDict({kind: nn.Linear(channels, len(config.classes(kind)))
                                        for kind in KINDS})

        def forward(self, x: torch.Tensor, features_only: bool = False):
            # Centre the input so BatchNorm statistics do not depend on brightness alone.
            features = self.trunk(x * 2.0 - 1.0).mean(dim=(2, 3))
            if features_only:
                return features
            return {kind: head(features) for kind, head in self.heads.items()}

    return ProbeNetwork()

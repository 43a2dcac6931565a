"""The image perceptron (paper §2.3, Eq. 3): ViT -> Q-Former with learned queries -> LLM width.

Every photo, whatever its size, is resized to the vision tower's input size (as BLIP-2's own
image processor does) and becomes ``num_query_tokens`` (32) embeddings in the LLM's input space.
"""

from __future__ import annotations

import torch
from torch import nn

from photodialog.data.photos import as_rgb

# BLIP-2's image processor normalisation (OpenAI CLIP statistics).
BLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
BLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def photo_to_tensor(image, size: int, mean=BLIP_MEAN, std=BLIP_STD) -> torch.Tensor:
    """A PIL photo (any size) as a normalised [3, size, size] tensor, resized bicubically."""
    # only this path needs numpy; keeps light callers light
    import numpy as np
    from PIL import Image

    image = as_rgb(image).resize((size, size), Image.Resampling.BICUBIC)  # not convert("RGB"): it would clip a 16-bit photo to white
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (array - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


class ImagePerceptron(nn.Module):
    """``H^v = Q-Former(Q, ViT(I))`` followed by a new linear projection into the LLM's width."""

    def __init__(self, vision_model: nn.Module, qformer: nn.Module, query_tokens: torch.Tensor, llm_hidden_size: int):
        super().__init__()
        self.vision_model = vision_model
        self.qformer = qformer
        self.query_tokens = nn.Parameter(query_tokens.detach().clone().reshape(1, -1, query_tokens.shape[-1]))
        self.projection = nn.Linear(qformer.config.hidden_size, llm_hidden_size)

    @property
    def image_size(self) -> int:
        """The side in pixels the vision model expects."""
        return int(self.vision_model.config.image_size)

    @property
    def num_query_tokens(self) -> int:
        """Embeddings per photo in the LLM input: the Q-Former's learned queries (32 in BLIP-2)."""
        return int(self.query_tokens.shape[1])

    def preprocess(self, images) -> torch.Tensor:
        """PIL photos of any sizes -> [N, 3, S, S] input for ``forward``."""
        return torch.stack([photo_to_tensor(img, self.image_size) for img in images])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] -> [N, num_query_tokens, llm_hidden_size]."""
        return self.project(self.query_features(self.vision_features(pixel_values)))

    # The three stages apart, so that a frozen stage's output can be cached per photo.
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """ViT: [N, 3, S, S] -> [N, patches + 1, vision width]."""
        dtype = next(self.vision_model.parameters()).dtype
        return self.vision_model(pixel_values=pixel_values.to(dtype)).last_hidden_state

    def query_features(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Q-Former with the learned queries: [N, patches + 1, vision width] -> [N, queries, Q-Former width]."""
        mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        return self.qformer(query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=mask).last_hidden_state

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The new linear map into the LLM's width (Eq. 3)."""
        return self.projection(hidden.to(self.projection.weight.dtype))

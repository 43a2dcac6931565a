"""Running the diffusion model's CLIP text encoder on embeddings instead of token ids.

``CLIPTextModel.forward`` only takes ids; the bridge hands it ``R_SD @ E`` (Eq. 11), so this
module runs the same layers (token + position embeddings, causal encoder, final layer norm)
from given token embeddings. The result equals ``text_encoder(ids).last_hidden_state`` when the
embeddings are ``E[ids]`` (tested).
"""

from __future__ import annotations

import torch


def _transformer(text_encoder):
    """The CLIP text transformer (nested as ``text_model`` in older transformers releases)."""
    return getattr(text_encoder, "text_model", text_encoder)


def token_embedding(text_encoder) -> torch.Tensor:
    """The text encoder's token embedding matrix E [|V_SD|, d]."""
    return _transformer(text_encoder).embeddings.token_embedding.weight


def encode_token_embeddings(text_encoder, inputs_embeds: torch.Tensor) -> torch.Tensor:
    """Last hidden state of the CLIP text transformer for token embeddings [C, n, d]."""
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers.masking_utils import create_causal_mask

    model = _transformer(text_encoder)
    hidden = model.embeddings(inputs_embeds=inputs_embeds.to(token_embedding(text_encoder).dtype))
    mask = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=None, cache=None)
    hidden = model.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True).last_hidden_state
    return model.final_layer_norm(hidden)

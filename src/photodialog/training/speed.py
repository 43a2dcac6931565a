"""Training speed settings that leave the loss as it is: fused AdamW, ``torch.compile``, the frozen caches.

* ``adamw``: AdamW with ``fused=True`` on CUDA (one kernel for every parameter's update instead of
  a few per parameter, and no per-parameter step counter read on the host); ``foreach`` elsewhere
  as torch chooses. Same update rule; the fused kernel rounds in a different order (not bitwise).
* ``compile_parts``: ``torch.compile`` of the UNet and of each LLM decoder layer (``train.compile``).
  ``nn.Module.compile`` compiles in place, so parameter names and checkpoints stay as they are.
* ``setup_for_speed``: what the trainer calls once the model is built.
"""

from __future__ import annotations

import logging

import torch
from photodialog.training.caches import enable_frozen_caches

log = logging.getLogger(__name__)


def adamw(params, *, lr: float, weight_decay: float, device) -> torch.optim.AdamW:
    """AdamW over ``params``, fused where they will live on a CUDA device."""
    fused = torch.device(device).type == "cuda"
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def compile_parts(model, **options) -> list[str]:
    """Compile the UNet and every LLM decoder layer in place (``options`` go to ``torch.compile``);
    returns what was compiled."""
    done = []
    generator = getattr(model, "generator", None)
    if generator is not None:
        generator.unet.compile(**options)
        done.append("unet")
    if getattr(model, "llm", None) is not None:
        layers = getattr(model.llm.get_decoder(), "layers", None) or getattr(model.llm.get_decoder(), "h", None) or []
        for layer in layers:
            layer.compile(**options)
        if layers:
            done.append(f"llm decoder layers ({len(layers)})")
    return done


def setup_for_speed(model, train_config, *, shards_weights: bool = False) -> dict:
    """Frozen-output caches and compilation as ``train_config`` asks; returns what was set, for the log.

    ``shards_weights`` (FSDP, DeepSpeed ZeRO-3): no frozen cache. Sharded weights are gathered by a
    collective at every forward of their module, and a cache hit skips the forward on one process
    while another process misses and runs it: the collectives would no longer match."""
    done = {}
    if train_config.cache_frozen and not shards_weights:
        done["cached"] = enable_frozen_caches(model, int(train_config.cache_max_gb * 1e9))
    if train_config.compile:
        done["compiled"] = compile_parts(model)
    return done

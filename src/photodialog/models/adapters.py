"""What trains in each part: ``frozen``, ``lora`` (peft adapters injected in place) or ``full``.

LoRA is injected with ``peft.inject_adapter_in_model`` so module paths stay as they are (the
model code reaches into the LLM and the text encoder by attribute). As in the authors' code,
the LLM's LoRA setting also trains its input embeddings and LM head in full when
``train_embeddings`` is set, because the new ``[IMG]``/``[/IMG]`` rows must learn.
"""

from __future__ import annotations

from torch import nn

from photodialog.config import LoraSettings

# Modules LoRA targets in each diffusion part (diffusers' and transformers' attention names).
DEFAULT_TARGETS = {
    "unet": ["to_q", "to_k", "to_v", "to_out.0"],
    "text_encoder": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "vae": ["to_q", "to_k", "to_v", "to_out.0"],
    "perceptron": ["query", "key", "value"],
}


def set_training_mode(part: str, module: nn.Module, mode: str, lora: LoraSettings) -> None:
    """Freeze ``module``, make it fully trainable, or inject LoRA adapters into it."""
    if mode == "full":
        module.requires_grad_(True)
        return
    module.requires_grad_(False)
    if mode == "frozen":
        return
    if mode != "lora":
        raise ValueError(f"unknown training mode {mode!r} for {part}")
    from peft import LoraConfig, inject_adapter_in_model

    targets = lora.target_modules if part == "llm" else DEFAULT_TARGETS.get(part, lora.target_modules)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets)
    inject_adapter_in_model(config, module)
    if part == "llm" and lora.train_embeddings:
        module.get_input_embeddings().requires_grad_(True)
        module.get_output_embeddings().requires_grad_(True)


def trainable_state(module: nn.Module) -> dict:
    """The parameters that train (LoRA weights, full parts): what a checkpoint stores."""
    return {name: p.detach() for name, p in module.named_parameters() if p.requires_grad}


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable, total

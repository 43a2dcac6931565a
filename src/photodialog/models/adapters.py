"""What trains in each part: ``frozen``, ``lora`` (peft adapters injected in place) or ``full``.

LoRA is injected with ``peft.inject_adapter_in_model`` so module paths stay as they are (the
model code reaches into the LLM and the text encoder by attribute). As in the authors' code,
the LLM's LoRA setting also trains its input embeddings and LM head in full when
``train_embeddings`` is set, because the new ``[IMG]``/``[/IMG]`` rows must learn.
"""

from __future__ import annotations

from torch import nn

from photodialog.config import LoraSettings

# Modules LoRA targets in each sub-module (diffusers' and transformers' attention names). The
# perceptron's two halves differ: BLIP-2's ViT fuses q/k/v into one ``qkv`` linear, while its
# Q-Former (BERT-style) keeps ``query``/``key``/``value`` apart, so each is keyed by its own name.
DEFAULT_TARGETS = {
    "unet": ["to_q", "to_k", "to_v", "to_out.0"],
    "text_encoder": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "vae": ["to_q", "to_k", "to_v", "to_out.0"],
    "vision_model": ["qkv"],
    "qformer": ["query", "key", "value"],
}


def set_training_mode(part: str, module: nn.Module, mode: str, lora: LoraSettings) -> None:
    """Freeze ``module``, make it fully trainable, or inject LoRA adapters into it.

    ``part`` picks the LoRA targets: ``llm`` uses ``lora.target_modules``, the others their
    ``DEFAULT_TARGETS`` entry (the perceptron's ``vision_model`` and ``qformer`` separately).
    """
    if mode == "full":
        module.requires_grad_(True)
        return
    module.requires_grad_(False)
    if mode == "frozen":
        return
    if mode != "lora":
        raise ValueError(f"unknown training mode {mode!r} for {part}")
    # the Hugging Face stack is slow to import: only this path needs it
    from peft import LoraConfig, inject_adapter_in_model

    targets = lora.target_modules if part == "llm" else DEFAULT_TARGETS.get(part, lora.target_modules)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets)
    inject_adapter_in_model(config, module)
    if part == "llm" and lora.train_embeddings:
        module.get_input_embeddings().requires_grad_(True)
        module.get_output_embeddings().requires_grad_(True)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable, total

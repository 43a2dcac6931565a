"""Memory needed to load and train each paper preset setting, from parameter counts (no GPU needed).

``photodialog bench memory [--json] [--out FILE]`` builds the paper's architectures on the meta
device (no memory), sets each setting's training modes as the trainer does, and counts bytes:

* **at rest**: every parameter in its dtype after ``apply_training_modes`` (trainable ones float32,
  frozen ones in the recipe's ``model.dtype``, bf16; BLIP-2's Q-Former and queries float32);
* **host RAM to load** = max(at rest, LLM as loaded + BLIP-2 load transient). The trainer loads
  every part into host memory before Accelerate moves it to the GPU; the LLM comes in the recipe's
  dtype (its trainable weights become float32 only after all parts are loaded), and reading BLIP-2
  builds its ViT in float32 beside the float32 tensors read from the checkpoint shards
  (``Salesforce/blip2-opt-2.7b-coco`` stores float32): 2 x 4 bytes x (ViT + Q-Former + queries);
* **GPU before activations** = at rest + float32 gradients (4 bytes per trainable parameter) +
  AdamW's two float32 moments (8 bytes per trainable parameter). Activations come on top; the
  paper benchmark on a GPU measures them (``scripts/gpu-benchmarks.sh``).
"""

from __future__ import annotations

from photodialog.bench.paper import build_paper_model
from photodialog.bench.paper_configs import PaperArchitecture

SETTINGS = {
    "paper (every part but the VAE trains in full, section 2.5)": {"overrides": [], "parts": None},
    "authors' code (LoRA LLM, frozen ViT/Q-Former and text encoder)": {
        "overrides": ["model.trainable.llm=lora", "model.trainable.perceptron=frozen", "model.trainable.text_encoder=frozen"], "parts": None},
    "pipeline text part (LLM with LoRA, perceptron frozen)": {
        "overrides": ["model.trainable.llm=lora", "model.trainable.perceptron=frozen"], "parts": ["llm", "perceptron"]},
    "pipeline image part (UNet full, text encoder and VAE frozen)": {
        "overrides": ["model.trainable.text_encoder=frozen"], "parts": ["unet", "text_encoder", "vae"]},
}
GB = 1e9


def _bytes(params) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def setting_memory(overrides: list[str], parts: list[str] | None) -> dict:
    """Bytes at rest, host RAM to load and GPU memory before activations for one setting (module doc)."""
    model = build_paper_model(PaperArchitecture(), "meta", overrides=overrides)
    modules = {name: m for name, m in model.part_modules().items() if parts is None or name in parts}
    params = [p for m in modules.values() for p in m.parameters()]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    at_rest = _bytes(params)
    llm_as_loaded = sum(p.numel() for p in model.llm.parameters()) * 2 if "llm" in modules else 0  # bf16
    blip2 = 0
    if "perceptron" in modules:
        perceptron = modules["perceptron"]
        read = sum(p.numel() for m in (perceptron.vision_model, perceptron.qformer) for p in m.parameters()) + perceptron.query_tokens.numel()
        blip2 = 2 * 4 * read
    host = max(at_rest, llm_as_loaded + blip2)
    return {
        "overrides": overrides, "parts": sorted(modules), "parameters": sum(p.numel() for p in params), "trainable": trainable,
        "at_rest_bytes": at_rest, "at_rest_by_part_bytes": {name: _bytes(m.parameters()) for name, m in modules.items()},
        "host_ram_to_load_bytes": host, "gradient_bytes": 4 * trainable, "adamw_state_bytes": 8 * trainable,
        "gpu_before_activations_bytes": at_rest + 12 * trainable,
    }


def all_settings() -> dict:
    return {"method": " ".join(__doc__.split("\n\n", 1)[1].split()),
            "settings": {name: setting_memory(**spec) for name, spec in SETTINGS.items()}}


def markdown(result: dict) -> str:
    rows = ["| setting | parameters | trainable | host RAM to load | GPU before activations (weights + grads + AdamW) |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in result["settings"].items():
        rows.append(f"| {name} | {r['parameters'] / 1e9:.2f} B | {r['trainable'] / 1e9:.3f} B | {r['host_ram_to_load_bytes'] / GB:.1f} GB | "
                    f"{r['gpu_before_activations_bytes'] / GB:.1f} GB ({r['at_rest_bytes'] / GB:.1f} + {r['gradient_bytes'] / GB:.1f} + "
                    f"{r['adamw_state_bytes'] / GB:.1f}) |")
    return "\n".join(rows)


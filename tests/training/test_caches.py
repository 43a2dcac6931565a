"""Frozen-output caches: the same losses with and without them, and the frozen parts skipped on a hit.

The model is the paper preset's code path at stand-in sizes (a VAE, BLIP-2's ViT and Q-Former,
LoRA LLM, frozen perceptron: the authors' setting), on the CPU. Both runs build the model from the
same seed and step on the same batch with the same random streams, so every loss must be bitwise
equal: the caches keep the VAE's latent distribution and draw its sample from the same stream, and
keep outputs of parts that have no trainable weight and no dropout.
"""

from __future__ import annotations

import pytest
import torch

from photodialog.bench.paper import PaperStepSettings, build_paper_model, paper_recipe, synthetic_batch
from photodialog.bench.paper_configs import standin
from photodialog.bench.step import TrainStep
from photodialog.training.caches import enable_frozen_caches, perceptron_stage


def build(qformer_dropout: float | None = None):
    torch.manual_seed(0)
    arch = standin()
    model = build_paper_model(arch, "cpu")
    if qformer_dropout is not None:
        set_dropout(model.perceptron.qformer, qformer_dropout)
    settings = PaperStepSettings(batch_size=3, seq_len=48, image_targets=2, standin=True, device="cpu")
    batch = synthetic_batch(model, arch, settings, "cpu")
    batch.context_keys = [f"context-{i}" for i in range(batch.context_pixels.shape[0])]
    batch.target_keys = [f"target-{i}" for i in range(batch.target_pixels.shape[0])]
    return model, batch


def set_dropout(module, p: float) -> None:
    module.config.hidden_dropout_prob = module.config.attention_probs_dropout_prob = p
    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.p = p
        if isinstance(getattr(sub, "attention_dropout", None), float):
            sub.attention_dropout = p  # what the attention code passes to its functional dropout


def run(model, batch, steps: int = 3):
    step = TrainStep(model, paper_recipe(), batch, 1.0, "cpu", autocast=torch.bfloat16)
    torch.manual_seed(1)
    outs = [step() for _ in range(steps)]
    return [(o.loss.detach(), o.text_loss.detach(), o.image_loss.detach()) for o in outs]


def calls(module) -> list:
    seen = []
    module.register_forward_hook(lambda *args: seen.append(1))
    return seen


@pytest.mark.parametrize("qformer_dropout, stage", [(None, "vision"), (0.0, "query")])
def test_same_losses_with_and_without_the_caches(qformer_dropout, stage):
    plain_model, batch = build(qformer_dropout)
    plain = run(plain_model, batch)
    cached_model, batch = build(qformer_dropout)
    assert enable_frozen_caches(cached_model, 2**30).keys() == {"latents", "perceptron"}
    assert cached_model.perceptron_cache.stage == stage
    vae_calls, vit_calls = calls(cached_model.generator.vae.encoder), calls(cached_model.perceptron.vision_model)
    qformer_calls = calls(cached_model.perceptron.qformer)
    cached = run(cached_model, batch)
    for step, (a, b) in enumerate(zip(plain, cached)):
        for name, x, y in zip(("loss", "text_loss", "image_loss"), a, b):
            assert torch.equal(x, y), f"step {step} {name}: {x.item()} != {y.item()}"
    # Only the first step ran the frozen parts; the optimizer changed the trainable weights in between.
    assert len(vae_calls) == 1 and len(vit_calls) == 1
    assert len(qformer_calls) == (1 if stage == "query" else 3)
    assert cached_model.latent_cache.photos.hits == 2 * 2 and cached_model.perceptron_cache.photos.hits == 2 * 3
    assert not torch.equal(plain[0][0], plain[1][0])  # the steps did change the weights (the check can fail)


def test_a_new_photo_is_computed_the_cached_ones_reused():
    model, batch = build()
    enable_frozen_caches(model, 2**30)
    cache = model.latent_cache
    images = batch.target_pixels
    first = cache.photos.lookup(["a", "b"], lambda rows: (images[rows] * 2,), "cpu")[0]
    asked = []
    again = cache.photos.lookup(["b", "c", "a"], lambda rows: (asked.extend(rows) or images[[1]] * 3,), "cpu")[0]
    assert asked == [1]  # only "c"
    assert torch.equal(again[0], first[1]) and torch.equal(again[2], first[0]) and torch.equal(again[1], images[1] * 3)


def test_no_cache_for_parts_that_train_or_have_dropout():
    model, _ = build()
    assert perceptron_stage(model.perceptron) == "vision"  # BLIP-2's Q-Former has dropout 0.1
    model.perceptron.vision_model.config.attention_dropout = 0.1
    assert perceptron_stage(model.perceptron) is None
    model.perceptron.vision_model.config.attention_dropout = 0.0
    model.perceptron.vision_model.encoder.layers[0].self_attn.attention_dropout = 0.1  # the value the attention reads
    assert perceptron_stage(model.perceptron) is None
    model.perceptron.vision_model.encoder.layers[0].self_attn.attention_dropout = 0.0
    assert perceptron_stage(model.perceptron) == "vision"
    model.perceptron.vision_model.requires_grad_(True)
    assert perceptron_stage(model.perceptron) is None
    model.generator.vae.requires_grad_(True)
    assert enable_frozen_caches(model, 2**30) == {}


def test_the_budget_stops_storing_but_not_computing():
    model, batch = build()
    enable_frozen_caches(model, 1)  # one byte: nothing fits
    run(model, batch, steps=2)
    assert model.latent_cache.photos.store == {} and model.latent_cache.photos.hits == 0


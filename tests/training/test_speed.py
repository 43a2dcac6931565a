"""Speed settings that must not change the model: compiled parts, the optimizer choice."""

from __future__ import annotations

import torch

from photodialog.bench.paper import build_paper_model
from photodialog.bench.paper_configs import standin
from photodialog.training.speed import adamw, compile_parts


def test_compiled_parts_give_the_same_loss_and_keep_parameter_names():
    """Dynamo traces the UNet and the LLM decoder layers (the ``eager`` backend: no C compiler needed,
    the same graphs inductor would get) and the forward is unchanged; checkpoints keep their keys."""
    torch.manual_seed(0)
    model = build_paper_model(standin(), "cpu")
    names = list(model.state_dict())
    pixels = torch.randn(2, model.generator.unet.config.in_channels, 8, 8)
    hidden = torch.randn(2, 5, model.generator.unet.config.cross_attention_dim)
    t = torch.tensor([10, 500])
    embeds = torch.randn(2, 7, model.llm.config.hidden_size)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 frozen weights, float32 trainable ones
        plain = model.generator.unet(pixels, t, encoder_hidden_states=hidden).sample, model.llm.get_decoder()(inputs_embeds=embeds).last_hidden_state
        assert compile_parts(model, backend="eager") == ["unet", f"llm decoder layers ({model.llm.config.num_hidden_layers})"]
        compiled = model.generator.unet(pixels, t, encoder_hidden_states=hidden).sample, model.llm.get_decoder()(inputs_embeds=embeds).last_hidden_state
    from torch._dynamo.utils import counters

    assert counters["stats"]["unique_graphs"] > 0  # dynamo did trace graphs, not just fall back to eager
    for a, b in zip(plain, compiled):
        assert torch.equal(a, b)
    assert list(model.state_dict()) == names


def test_adamw_is_fused_only_for_cuda():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert adamw(params, lr=1e-3, weight_decay=0.0, device="cpu").defaults["fused"] is None
    assert adamw(params, lr=1e-3, weight_decay=0.0, device="cuda").defaults["fused"] is True


def test_flop_counter_sees_compiled_parts():
    """The paper benchmark's FLOP count (for MFU) is the same with the parts compiled."""
    from photodialog.bench.paper import PaperStepSettings, counted_flops, paper_recipe, synthetic_batch
    from photodialog.bench.step import TrainStep

    torch.manual_seed(0)
    model = build_paper_model(standin(), "cpu")
    batch = synthetic_batch(model, standin(), PaperStepSettings(batch_size=2, seq_len=48, standin=True, device="cpu"), "cpu")
    step = TrainStep(model, paper_recipe(), batch, 1.0, "cpu", autocast=torch.bfloat16)
    plain = counted_flops(step)
    compile_parts(model, backend="eager")
    assert counted_flops(step) == plain > 0

"""End-to-end gradient: L_v reaches the LLM through every bridge but `none`."""

from __future__ import annotations

import pytest
import torch

from photodialog.config import load_config
from photodialog.models.dialogue_model import JointSettings, PhotoDialogModel


@pytest.fixture(scope="module")
def system_and_batch(tiny_world, tmp_path_factory):
    from photodialog.data.samples import build_samples
    from photodialog.system import build_system
    from photodialog.training.data import EncodedSamples, load_split, tokenizer_texts
    from photodialog.training.inspect import _photo_samples_first

    config = load_config("tiny-e2e", [f"data.path={tiny_world}", "model.caption_dropout=0"])
    dialogues, _ = load_split(config.data, "train")
    system = build_system(config, tmp_path_factory.mktemp("run"), tokenizer_texts(dialogues))
    samples = _photo_samples_first(build_samples(dialogues), 8)
    dataset = EncodedSamples(samples, system.formatter)
    return system, system.make_batch([dataset[i] for i in range(len(dataset))])


def image_loss_grad(system, batch, **settings) -> tuple[float, torch.Tensor]:
    parts = system.model
    model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator, JointSettings(**settings)).train()
    torch.manual_seed(0)
    out = model(batch, tau=0.5)
    params = [p for p in parts.llm.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out.image_loss, params, allow_unused=True)
    norm = torch.stack([g.pow(2).sum() for g in grads if g is not None]).sum().sqrt() if any(g is not None for g in grads) else torch.tensor(0.0)
    return float(out.image_loss.detach()), norm


@pytest.mark.parametrize("bridge", ["sentence", "word", "exact", "aligned"])
@pytest.mark.parametrize("source", ["sampled", "gold"])
def test_image_loss_reaches_the_llm(system_and_batch, bridge, source):
    system, batch = system_and_batch
    loss, norm = image_loss_grad(system, batch, bridge=bridge, caption_source=source)
    assert loss > 0
    assert norm > 0, f"no gradient of L_v on the LLM with bridge={bridge}"


def test_none_bridge_gives_the_llm_exactly_zero(system_and_batch):
    system, batch = system_and_batch
    loss, norm = image_loss_grad(system, batch, bridge="none")
    assert loss > 0 and norm == 0.0


def test_gumbel_noise_off_still_passes_gradient(system_and_batch):
    system, batch = system_and_batch
    _, norm = image_loss_grad(system, batch, bridge="sentence", gumbel_noise=False)
    assert norm > 0


def test_sum_pooling_scales_the_gradient_up(system_and_batch):
    system, batch = system_and_batch
    _, mean_norm = image_loss_grad(system, batch, bridge="sentence", pooling="mean", gumbel_noise=False)
    _, sum_norm = image_loss_grad(system, batch, bridge="sentence", pooling="sum", gumbel_noise=False)
    assert sum_norm > mean_norm


def test_inspect_gradients_cli_prints_the_report(tiny_world, capsys):
    import json

    from photodialog.cli.main import main

    assert main(["inspect", "gradients", "--config", "tiny-e2e", f"data.path={tiny_world}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["image_loss_grad_norm"]) == {"llm", "perceptron", "unet", "text_encoder"}
    assert report["image_loss_grad_norm"]["llm"] > 0
    assert main(["inspect", "gradients", "--config", "tiny-e2e", f"data.path={tiny_world}", "model.bridge=none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["image_loss_grad_norm"]["llm"] == 0.0


def test_image_loss_reaches_the_perceptron_through_a_context_photo(system_and_batch, tiny_world):
    """A reply that draws a photo after one was shared: L_v flows back into the perceptron too."""
    import dataclasses

    from photodialog.data.samples import build_samples
    from photodialog.training.data import EncodedSamples, load_split

    system, _ = system_and_batch
    dialogues, _ = load_split(system.config.data, "train")
    samples = build_samples(dialogues)
    shown = next(turn for s in samples for turn in s.context if turn.photos)
    drawing = next(s for s in samples if s.response.shares_photo)
    sample = dataclasses.replace(drawing, context=[shown, *drawing.context])
    batch = system.make_batch([EncodedSamples([sample], system.formatter)[0]])
    assert batch.context_pixels.shape[0] == 1
    norms = {}
    for bridge in ("sentence", "none"):
        parts = system.model
        model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator,
                                 JointSettings(bridge=bridge, caption_source="gold")).train()
        torch.manual_seed(0)
        out = model(batch, tau=0.5)
        params = [p for p in parts.perceptron.parameters() if p.requires_grad]
        grads = [g for g in torch.autograd.grad(out.image_loss, params, allow_unused=True) if g is not None]
        norms[bridge] = float(torch.stack([g.pow(2).sum() for g in grads]).sum().sqrt()) if grads else 0.0
    assert norms["sentence"] > 0
    assert norms["none"] == 0.0


def test_generator_alone_encodes_the_gold_captions_as_text(system_and_batch):
    """With no LLM (the pipeline's image part) L_v is the generator's loss on the gold caption
    texts, encoded exactly as at inference (``ImageGenerator.encode_text``)."""
    system, batch = system_and_batch
    generator = system.model.generator
    model = PhotoDialogModel(generator=generator, settings=JointSettings(bridge="none")).train()
    torch.manual_seed(5)  # a latent generator samples its VAE latents from the global stream
    out = model(batch, generator=torch.Generator().manual_seed(3))
    assert out.text_loss is None and out.stats["image_targets"] > 0
    used = [c for c in batch.captions if c.target >= 0]
    targets = batch.target_pixels[[c.target for c in used]]
    torch.manual_seed(5)
    expected = generator.loss(generator.encode_text([c.text for c in used]), targets, generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(out.image_loss) and torch.equal(out.image_loss, expected)


def test_the_losses_are_a_dict_whose_tensors_a_hook_can_replace(system_and_batch):
    """DeepSpeed ZeRO-3 finds a module's output tensors in dicts (not in dataclasses) and replaces
    them in place with ones whose backward first gathers the weights the forward read outside
    their module (the bridge's token embedding): the trainer's ``out.loss`` must be the replacement."""
    system, batch = system_and_batch
    torch.manual_seed(0)
    out = system.model.train()(batch, tau=0.5)
    assert set(out) == {"loss", "text_loss", "image_loss"} and out["loss"] is out.loss
    called = []

    class Gather(torch.autograd.Function):  # ZeRO-3's PreBackwardFunction: the identity, with work in backward
        @staticmethod
        def forward(ctx, tensor):
            return tensor.view_as(tensor)

        @staticmethod
        def backward(ctx, grad):
            called.append(True)
            return grad

    for key in list(out):
        out[key] = Gather.apply(out[key])
    assert out.image_loss is out["image_loss"]
    out.loss.backward()
    assert called
    system.model.zero_grad(set_to_none=True)


# ------------------------------------------------------------ the own caption trains the LLM only


def loss_and_grads(system, batch, seed=0, **settings):
    """The model's losses on ``batch`` (noise from ``seed``) and the gradients of its total loss's L_v
    parts on the generator's and the LLM's trainable parameters (zeros where none)."""
    parts = system.model
    model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator, JointSettings(**settings)).train()
    torch.manual_seed(seed)  # a latent generator samples its VAE latents from the global stream
    out = model(batch, tau=0.5, generator=torch.Generator().manual_seed(seed))
    image = out.image_loss + (out.own_caption_loss if out.own_caption_loss is not None else 0)
    grads = {}
    for name, module in (("generator", parts.generator), ("llm", parts.llm)):
        params = [p for p in module.parameters() if p.requires_grad]
        found = torch.autograd.grad(image, params, allow_unused=True, retain_graph=True)
        grads[name] = [torch.zeros_like(p) if g is None else g for p, g in zip(params, found)]
    return out, grads


def norm(grads) -> float:
    return float(torch.stack([g.double().pow(2).sum() for g in grads]).sum().sqrt())


@pytest.mark.parametrize("bridge", ["aligned", "sentence"])
@pytest.mark.parametrize("source", ["sampled", "argmax"])
def test_llm_only_own_caption_trains_the_llm_and_not_the_generator(system_and_batch, bridge, source):
    """own_caption_path=llm_only: the generator's gradient is the gold-caption gradient, bit for bit
    (the same noise draws: STGS, then the gold pass), and the LLM gets L_v's gradient from its own caption."""
    system, batch = system_and_batch
    flags = [p.requires_grad for p in system.model.generator.parameters()]
    out, grads = loss_and_grads(system, batch, bridge=bridge, caption_source=source, own_caption_path="llm_only")
    gold_out, gold = loss_and_grads(system, batch, bridge="none", caption_source="gold")
    assert out.own_caption_loss is not None and out.own_caption_loss > 0
    assert torch.equal(out.image_loss, gold_out.image_loss)  # the gold pass is the gold-caption L_v
    assert all(torch.equal(a, b) for a, b in zip(grads["generator"], gold["generator"]))
    assert norm(grads["llm"]) > 0
    # The gold pass gives the LLM nothing: all its L_v gradient comes from its own caption.
    parts = system.model
    llm_params = [p for p in parts.llm.parameters() if p.requires_grad]
    model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator,
                             JointSettings(bridge=bridge, caption_source=source, own_caption_path="llm_only")).train()
    again = model(batch, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert all(g is None or not g.any() for g in torch.autograd.grad(again.image_loss, llm_params, allow_unused=True, retain_graph=True))
    assert [p.requires_grad for p in parts.generator.parameters()] == flags  # trainable again after the pass


def test_the_own_caption_weight_scales_the_bridges_lesson_and_leaves_the_generator_alone(system_and_batch):
    """model.own_caption_weight multiplies L_v(own), the only loss that reaches the LLM through the bridge:
    the LLM's gradient beyond L_t's scales with it, the generator's does not move."""
    system, batch = system_and_batch
    parts = system.model

    def total_grads(weight):
        model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator,
                                 JointSettings(bridge="aligned", caption_source="argmax", own_caption_path="llm_only",
                                               own_caption_weight=weight)).train()
        torch.manual_seed(0)
        out = model(batch, tau=0.5, generator=torch.Generator().manual_seed(0))
        grads = {}
        for name, module in (("generator", parts.generator), ("llm", parts.llm)):
            params = [p for p in module.parameters() if p.requires_grad]
            found = torch.autograd.grad(out.loss, params, allow_unused=True, retain_graph=True)
            grads[name] = [torch.zeros_like(p) if g is None else g for p, g in zip(params, found)]
        return out, grads

    (zero, g0), (one, g1), (three, g3) = total_grads(0.0), total_grads(1.0), total_grads(3.0)
    assert torch.equal(one.own_caption_loss, three.own_caption_loss) and one.own_caption_loss > 0
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(g0["generator"], g1["generator"], g3["generator"]))
    lesson_one = [b - a for a, b in zip(g0["llm"], g1["llm"])]
    lesson_three = [c - a for a, c in zip(g0["llm"], g3["llm"])]
    assert norm(lesson_one) > 0
    assert all(torch.allclose(t, 3 * o, atol=1e-6, rtol=1e-4) for o, t in zip(lesson_one, lesson_three))


def test_joint_own_caption_trains_the_generator_on_it(system_and_batch):
    """The default (the paper): the sampled caption's L_v trains the generator too, so its gradient is
    not the gold caption's (what llm_only prevents)."""
    system, batch = system_and_batch
    out, grads = loss_and_grads(system, batch, bridge="sentence", caption_source="sampled")
    _, gold = loss_and_grads(system, batch, bridge="none", caption_source="gold")
    assert out.own_caption_loss is None
    assert not all(torch.equal(a, b) for a, b in zip(grads["generator"], gold["generator"]))


def test_llm_only_leaves_the_generator_trainable_after_an_error(system_and_batch, monkeypatch):
    """The generator's parameters stop requiring grad only inside the own-caption pass, even when it fails."""
    system, batch = system_and_batch
    parts = system.model
    trainable = [p for p in parts.generator.parameters() if p.requires_grad]
    model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator,
                             JointSettings(bridge="sentence", caption_source="sampled", own_caption_path="llm_only")).train()
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return original(self, *args, **kwargs)

    original = type(parts.generator).loss
    monkeypatch.setattr(type(parts.generator), "loss", failing)
    with pytest.raises(RuntimeError, match="boom"):
        model(batch, tau=0.5)
    assert all(p.requires_grad for p in trainable)


def test_llm_only_with_gold_captions_is_refused():
    from photodialog.errors import ConfigError

    with pytest.raises(ConfigError, match="caption_source=sampled or argmax"):
        load_config("tiny-e2e", ["model.own_caption_path=llm_only", "model.caption_source=gold"])
    with pytest.raises(ValueError, match="sampled or argmax"):
        PhotoDialogModel(settings=JointSettings(caption_source="gold", own_caption_path="llm_only"))


# ------------------------------------------------------------ the authors' estimator


def test_argmax_captions_are_the_teacher_forced_argmax(system_and_batch, monkeypatch):
    """caption_source=argmax feeds the generator the argmax of the caption logits whatever the Gumbel
    noise; with the noise off (the authors' code) sampled is the same caption."""
    from photodialog.models import dialogue_model

    system, batch = system_and_batch
    parts = system.model
    seen = {}
    original = dialogue_model.PhotoDialogModel._caption_tokens

    def record(self, batch, index, tokens, caption_rows, **kwargs):
        caption = original(self, batch, index, tokens, caption_rows, **kwargs)
        seen.setdefault(self.settings.caption_source + str(self.settings.gumbel_noise), []).append(caption.llm_ids)
        return caption

    monkeypatch.setattr(dialogue_model.PhotoDialogModel, "_caption_tokens", record)
    for source, noise in (("argmax", True), ("argmax", False), ("sampled", False), ("sampled", True)):
        model = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator,
                                 JointSettings(bridge="sentence", caption_source=source, gumbel_noise=noise)).train()
        with torch.no_grad():
            model(batch, tau=1.0, generator=torch.Generator().manual_seed(0))
    assert seen["argmaxTrue"] == seen["argmaxFalse"] == seen["sampledFalse"]
    assert seen["sampledTrue"] != seen["argmaxTrue"]  # Gumbel samples at tau 1 differ from the argmax
    # The argmax caption is that of the teacher-forced logits: the LLM's most likely caption token at every position.
    hidden = PhotoDialogModel(parts.llm, parts.tokenizer, parts.perceptron, parts.generator)._hidden_states(batch)
    captions = [c for c in batch.captions if c.target >= 0]
    with torch.no_grad():
        logits = parts.llm.get_output_embeddings()(hidden)
    expected = [logits[c.sample, [p - 1 for p in c.positions]].argmax(-1).tolist() for c in captions]
    assert seen["argmaxTrue"] == expected


def test_inspect_gradients_counts_the_own_caption_pass(tiny_world, capsys):
    """With own_caption_path=llm_only the LLM's L_v gradient is that of its own captions' pass."""
    import json

    from photodialog.cli.main import main

    assert main(["inspect", "gradients", "--config", "tiny-e2e", f"data.path={tiny_world}", "model.bridge=aligned",
                 "model.caption_source=argmax", "model.own_caption_path=llm_only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["own_caption_path"] == "llm_only" and report["image_loss_grad_norm"]["llm"] > 0

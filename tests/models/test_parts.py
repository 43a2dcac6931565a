"""The parts: perceptron sizes, the text encoder on embeddings, the real checkpoint layouts."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from photodialog.config import ModelConfig, TinySizes


@pytest.fixture(scope="module")
def paper_layouts(tmp_path_factory, corpus):
    """Tiny random models saved exactly as the three published checkpoints are laid out."""
    from photodialog.models.tiny import save_tiny_parts

    out = tmp_path_factory.mktemp("layouts")
    sizes = TinySizes(llm_tokenizer="llama_bpe", llm_vocab=400, image_size=32)
    save_tiny_parts(out, corpus, sizes, latent=True)
    return out


def test_published_layouts_are_on_disk(paper_layouts):
    blip2, sd, llm = paper_layouts / "blip2", paper_layouts / "diffusion", paper_layouts / "llm"
    assert (blip2 / "config.json").is_file() and any(blip2.glob("*.safetensors"))
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (sd / sub).is_dir(), sub
    assert (sd / "model_index.json").is_file()
    assert (llm / "config.json").is_file() and (llm / "tokenizer_config.json").is_file()


def test_paper_code_path_loads_all_three_layouts(paper_layouts):
    from photodialog.models.assembly import build_model, part_sources

    config = ModelConfig(preset="paper", llm=str(paper_layouts / "llm"), blip2=str(paper_layouts / "blip2"),
                         diffusion=str(paper_layouts / "diffusion"))
    model = build_model(config, part_sources(config))
    assert type(model.tokenizer).__name__ == "LlamaTokenizer"
    assert model.generator.vae is not None and model.generator.latent_factor == 4
    assert model.perceptron.num_query_tokens == 32
    assert model.llm.get_input_embeddings().weight.shape[0] == len(model.tokenizer)
    # The BLIP-2 parts carry the saved weights, not a fresh random init.
    from safetensors.torch import load_file

    saved = load_file(str(next((paper_layouts / "blip2").glob("*.safetensors"))))
    assert torch.equal(model.perceptron.query_tokens.detach(), saved["query_tokens"].reshape(model.perceptron.query_tokens.shape))
    # One latent-space diffusion loss and a drawn photo through the VAE.
    hidden = model.generator.encode_text(["a red car"])
    loss = model.generator.loss(hidden, torch.zeros(1, 3, 32, 32))
    assert torch.isfinite(loss)
    (photo,) = model.generator.generate(["a red car"], steps=2, guidance_scale=1.0)
    assert photo.size == (32, 32)


@pytest.mark.parametrize("size", [(64, 64), (97, 131)])
def test_perceptron_returns_32_embeddings_for_any_photo_size(paper_layouts, size):
    from photodialog.models.pretrained import load_blip2_parts
    from photodialog.models.perceptron import ImagePerceptron

    perceptron = ImagePerceptron(*load_blip2_parts(str(paper_layouts / "blip2")), llm_hidden_size=48)
    photos = [Image.new("RGB", size, (200, 30, 30)), Image.new("RGB", size, (20, 30, 200))]
    out = perceptron(perceptron.preprocess(photos))
    assert out.shape == (2, 32, 48)
    assert not torch.allclose(out[0], out[1])


def test_text_encoder_on_embeddings_equals_on_ids(paper_layouts):
    from transformers import CLIPTextModel

    from photodialog.models.text_encoding import encode_token_embeddings, token_embedding

    encoder = CLIPTextModel.from_pretrained(str(paper_layouts / "diffusion"), subfolder="text_encoder").eval()
    ids = torch.tensor([[0, 5, 9, 17, 1, 1], [0, 7, 1, 1, 1, 1]])
    expected = encoder(input_ids=ids).last_hidden_state
    ours = encode_token_embeddings(encoder, torch.nn.functional.embedding(ids, token_embedding(encoder)))
    assert torch.allclose(ours, expected, atol=1e-5)


def test_gpt2_layout_works_as_the_llm(corpus, tmp_path):
    """The Divter baseline's DialoGPT layout goes through the same model code: the training
    forward (PhotoDialogModel) and the replies (Responder)."""
    from photodialog.data.schema import Photo, Sample, Turn
    from photodialog.models.assembly import build_model, part_sources
    from photodialog.models.batch import PhotoTensors, collate
    from photodialog.models.formatting import DialogueFormatter
    from photodialog.models.generation import Responder
    from photodialog.models.generation_settings import GenerationSettings
    from photodialog.models.tiny import save_tiny_parts

    save_tiny_parts(tmp_path, corpus, TinySizes(llm_architecture="gpt2", llm_vocab=200))
    config = ModelConfig(parts=["llm"], context_photos="caption")
    model = build_model(config, part_sources(config, tmp_path))
    assert type(model.llm).__name__ == "GPT2LMHeadModel"
    formatter = DialogueFormatter(model.tokenizer, photo_slots=0, context_photos="caption")
    history = [Turn("0", "hi! how are you doing today?"), Turn("1", "i finally got a new car, it's bright red [IMG] a red car [/IMG]",
                                                                [Photo("a red car")])]
    sample = Sample(dialogue_id="d", turn_index=2, context=history, response=Turn("0", "wow, what a lovely red car"))

    # Training: the response NLL through PhotoDialogModel.forward, with a gradient on the LLM.
    batch = collate([formatter.encode(sample)], PhotoTensors(), pad_id=model.tokenizer.pad_token_id)
    out = model.train()(batch)
    assert torch.isfinite(out.loss) and out.loss > 0 and out.image_loss is None
    out.loss.backward()
    assert model.llm.get_input_embeddings().weight.grad.abs().sum() > 0

    # Inference: greedy decoding starts with the LLM's own most likely next token after the prompt.
    responder = Responder(model.eval(), formatter, PhotoTensors())
    (ids,) = responder.generate_ids([history], ["0"], GenerationSettings(max_new_tokens=3))
    embeds, mask = responder.prompt_inputs([history], ["0"])
    with torch.no_grad():
        logits = model.llm(inputs_embeds=embeds, attention_mask=mask).logits
    assert 1 <= len(ids) <= 3 and ids[0] == int(logits[0, -1].argmax())


def test_perceptron_lora_adapts_the_vision_tower_and_the_qformer(paper_layouts):
    """``train.perceptron=lora``: the ViT's fused ``qkv`` and the Q-Former's query/key/value get
    adapters (their base weights frozen), and a photo's embeddings back-propagate into both."""
    from photodialog.models.assembly import build_model, part_sources

    config = ModelConfig(preset="paper", llm=str(paper_layouts / "llm"), blip2=str(paper_layouts / "blip2"),
                         diffusion=str(paper_layouts / "diffusion"), parts=["llm", "perceptron"])
    config.trainable.perceptron = "lora"
    perceptron = build_model(config, part_sources(config)).perceptron
    trainable = {name for name, p in perceptron.named_parameters() if p.requires_grad}
    for part, target in (("vision_model.", ".qkv.lora_"), ("qformer.", ".query.lora_")):
        assert any(n.startswith(part) and target in n for n in trainable), part
    assert not any(n.startswith(("vision_model.", "qformer.")) and ".lora_" not in n for n in trainable)

    pixels = torch.randn(2, 3, perceptron.image_size, perceptron.image_size, generator=torch.Generator().manual_seed(0))
    perceptron(pixels).square().mean().backward()
    # LoRA's B starts at zero, so B is what gets a gradient on the first step.
    for part in ("vision_model.", "qformer."):
        grads = [p.grad for n, p in perceptron.named_parameters() if n.startswith(part) and ".lora_B" in n]
        assert grads and all(g is not None for g in grads), part
        assert sum(float(g.abs().sum()) for g in grads) > 0, part


def test_the_perceptrons_pretraining_photos_are_drawn_by_the_worlds_renderer_on_every_combination(tiny_world):
    """model.tiny.vision_pretrain_photos: N fresh photos, the same N on every call (seeded from the
    world), none of them a dialogue's photo, labelled with what was drawn, held-out combinations included."""
    from photodialog.data.synth import load_world
    from photodialog.models.assembly import _labelled_world_photos

    world = load_world(tiny_world)
    pixels, labels = _labelled_world_photos(str(tiny_world), 16, rendered=300)
    again, same = _labelled_world_photos(str(tiny_world), 16, rendered=300)
    assert pixels.shape == (300, 3, 16, 16) and labels.shape == (300, 3)
    assert torch.equal(pixels, again) and torch.equal(labels, same)
    orders = (list(world.objects), list(world.colours), list(world.scenes))
    drawn = {tuple(order[i] for order, i in zip(orders, row.tolist())) for row in labels}
    held = {(t.object, t.colour, t.scene) for t in world.held_out}
    assert drawn & held  # like BLIP-2's corpus, it is not the dialogues': their held-out combinations are in it
    photos, photo_labels = _labelled_world_photos(str(tiny_world), 16)  # 0: the world's own training photos
    assert photos.shape[0] == len(world.photos("train"))
    assert not any(torch.equal(p, q) for p in pixels[:20] for q in photos)


def test_perceptron_pretraining_learns_what_photos_show_and_says_how_far_it_is(tmp_path, caplog):
    # each photo is one flat colour per channel: channel c > 0 is attribute c's class 1
    from photodialog.models.tiny import save_tiny_blip2

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (256, 3), generator=generator)
    pixels = (labels.float() * 2 - 1)[:, :, None, None].expand(-1, -1, 32, 32).contiguous()
    torch.manual_seed(0)
    with caplog.at_level("INFO", logger="photodialog.models.tiny"):
        save_tiny_blip2(tmp_path, TinySizes(vision_pretrain_steps=150), labelled_photos=(pixels, labels))
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("perceptron pretraining: step 150 / 150") for line in lines), lines
    final = next(line for line in lines if line.startswith("perceptron pretrained for 150 steps"))
    assert float(final.split("right on ")[1].split("%")[0]) >= 90, final  # chance: 12.5%

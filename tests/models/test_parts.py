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
    from photodialog.models.loading import load_blip2_parts
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
    """The Divter baseline's DialoGPT layout goes through the same model code."""
    from photodialog.models.assembly import build_model, part_sources
    from photodialog.models.tiny import save_tiny_parts

    save_tiny_parts(tmp_path, corpus, TinySizes(llm_architecture="gpt2", llm_vocab=200))
    config = ModelConfig(parts=["llm"], context_photos="caption")
    model = build_model(config, part_sources(config, tmp_path))
    assert type(model.llm).__name__ == "GPT2LMHeadModel"
    ids = torch.tensor([[1, 5, 6, 7]])
    out = model.llm.generate(inputs_embeds=model.llm.get_input_embeddings()(ids), attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False)
    assert out.shape[1] <= 3

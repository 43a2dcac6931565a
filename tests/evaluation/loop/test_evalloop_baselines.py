"""The pipeline and Divter baselines: their recipes, the join of their parts, and a GPT-2 dialogue LM."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from evalloop_helpers import FAST_FLAGS, MAX_SAMPLES, RUN_OVERRIDES

from photodialog.registry import BASELINE_SCALES, BASELINES
from photodialog.training.baselines import baseline_recipes
from photodialog.cli.main import main
from photodialog.config import load_config
from photodialog.evaluation.runner import NO_GENERATOR
from photodialog.evaluation.metrics import load_result


@pytest.mark.parametrize("baseline", BASELINES.names)
@pytest.mark.parametrize("scale", BASELINE_SCALES)
def test_baseline_recipes_are_two_parts_joined_by_caption_text(baseline, scale):
    recipes = baseline_recipes(baseline, scale)
    text, image = load_config(recipes.text), load_config(recipes.image)
    assert text.model.parts == ["llm"] and text.model.context_photos == "caption" and text.model.bridge == "none"
    assert image.model.parts == ["generator"] and image.model.text_from.endswith(recipes.text)
    assert text.data.path == image.data.path
    if scale == "tiny":
        assert text.model.captioner == "probe"
        assert (text.model.tiny.llm_architecture == "gpt2") == (baseline == "divter")
    else:
        assert text.model.captioner == "Salesforce/blip2-opt-2.7b-coco"
        assert image.model.diffusion == "stabilityai/stable-diffusion-2-1-base" and image.model.image_size == 512
        expected_llm = "microsoft/DialoGPT-medium" if baseline == "divter" else "meta-llama/Llama-2-7b-chat-hf"
        assert text.model.llm == expected_llm
        for part in (text, image):  # the paper's hyper-parameters (§3.1.2)
            assert (part.train.lr, part.train.batch_size, part.train.weight_decay, part.train.warmup_steps) == (5e-5, 32, 0.01, 1000)


def test_tiny_pipeline_parts_have_the_end_to_end_sizes_and_settings():
    e2e = load_config("tiny-e2e")
    text, image = (load_config(name) for name in ("tiny-pipeline-text", "tiny-pipeline-image"))
    for part in (text, image):
        assert part.model.tiny == e2e.model.tiny
        assert (part.train.lr, part.train.batch_size, part.train.warmup_steps, part.train.early_stopping_patience) == (
            e2e.train.lr, e2e.train.batch_size, e2e.train.warmup_steps, e2e.train.early_stopping_patience)
    assert text.model.trainable.llm == e2e.model.trainable.llm and text.data.photo_sample_weight == e2e.data.photo_sample_weight
    for field in ("unet", "text_encoder", "vae"):
        assert getattr(image.model.trainable, field) == getattr(e2e.model.trainable, field)
    assert (image.model.image_loss_repeats, image.model.caption_dropout) == (e2e.model.image_loss_repeats, e2e.model.caption_dropout)


def test_pipeline_parts_join_and_evaluate_through_the_eval_command(pipeline_run, pipeline_eval):
    from photodialog.system import load_system

    result = load_result(pipeline_eval)
    model = result["model"]
    assert (model["name"], model["kind"], model["captioner"], model["context_photos"]) == ("pipeline", "pipeline", "probe", "caption")
    assert model["text_from"] == str(pipeline_run.text_dir.resolve())
    assert result["data"]["targets"] == MAX_SAMPLES and set(result["aggregate"]) >= {"bleu1", "is", "share_f1"}
    joined, text_only = load_system(pipeline_run.image_dir), load_system(pipeline_run.text_dir)
    assert joined.model.generator is not None and joined.model.perceptron is None
    for (name, joined_weight), (_, text_weight) in zip(joined.model.llm.state_dict().items(), text_only.model.llm.state_dict().items()):
        assert torch.equal(joined_weight, text_weight), name  # the LLM is the text part's, as trained


def test_the_text_part_alone_evaluates_text_and_says_why_there_are_no_photos(pipeline_run, eval_world, tmp_path):
    out = tmp_path / "text.json"
    code = main(["eval", "--checkpoint", str(pipeline_run.text_dir), "--data", str(eval_world), "--seeds", "0",
                 "--max-samples", "3", "--out", str(out), *FAST_FLAGS])
    assert code == 0
    aggregate = load_result(out)["aggregate"]
    assert aggregate["bleu1"]["available"]
    assert aggregate["fid"]["reason"] == NO_GENERATOR and aggregate["probe_fid"]["reason"] == NO_GENERATOR


@pytest.mark.slow
def test_tiny_divter_trains_and_evaluates_as_divter(eval_world, tmp_path, capsys):
    # through the command line: `photodialog train --baseline divter` trains both parts and says what to evaluate
    assert main(["train", "--baseline", "divter", "--out", str(tmp_path / "divter"), "--no-progress",
                 f"data.path={eval_world}", *RUN_OVERRIDES]) == 0
    assert f"photodialog eval --checkpoint {tmp_path / 'divter' / 'image'}" in capsys.readouterr().out
    out = tmp_path / "divter.json"
    assert main(["eval", "--checkpoint", str(tmp_path / "divter" / "image"), "--seeds", "0", "--max-samples", "4", "--out", str(out), *FAST_FLAGS]) == 0
    model = load_result(out)["model"]
    assert (model["name"], model["llm_architecture"]) == ("Divter", "gpt2")


# ------------------------------------------------------------ a GPT-2 dialogue LM in the model code


@pytest.fixture(scope="module")
def gpt2_parts(tmp_path_factory):
    """A tiny GPT2LMHeadModel folder with the project's tokenizer, and a tiny Stable Diffusion folder."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from photodialog.config import TinySizes
    from photodialog.models.tiny import save_tiny_diffusion
    from photodialog.models.tokenizers import train_llm_tokenizer

    corpus = ["hi how are you", "look at this", "a red car at the beach", "a blue fish in the snow", "wow it is red"] * 40
    folder = tmp_path_factory.mktemp("gpt2")
    tokenizer = train_llm_tokenizer(corpus, 150)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder / "llm")
    tokenizer.save_pretrained(folder / "llm")
    sizes = dataclasses.replace(TinySizes(), text_encoder_hidden=32, text_encoder_layers=1, sd_vocab=200, unet_channels=[16, 32], image_size=16)
    save_tiny_diffusion(folder / "diffusion", corpus, sizes, latent=False)
    return folder


def _gpt2_model(folder, parts, bridge):
    from photodialog.config import ModelConfig
    from photodialog.models.assembly import PartSources, build_model

    config = ModelConfig(preset="paper", llm=str(folder / "llm"), diffusion=str(folder / "diffusion"), parts=parts,
                         context_photos="caption", bridge=bridge, caption_source="gold")
    return build_model(config, PartSources(config.llm, "", config.diffusion))


def _samples(photo_path: str | None = None):
    from photodialog.data.schema import Photo, Sample, Turn

    shared = Turn("1", "look at this [IMG] a red car at the beach [/IMG]", [Photo("a red car at the beach", path=photo_path)])
    return [
        Sample("d", 1, [Turn("0", "hi how are you")], Turn("1", "wow it is red")),
        Sample("d", 2, [Turn("0", "hi how are you"), Turn("1", "a blue fish in the snow")], shared),
    ]


def test_a_gpt2_causal_lm_loads_trains_and_generates_with_left_padding(gpt2_parts):
    from photodialog.models.batch import PhotoTensors, collate
    from photodialog.models.formatting import DialogueFormatter
    from photodialog.models.generation import Responder
    from photodialog.models.generation_settings import GenerationSettings

    model = _gpt2_model(gpt2_parts, ["llm"], "none")
    assert type(model.llm).__name__ == "GPT2LMHeadModel"
    formatter = DialogueFormatter(model.tokenizer, photo_slots=0, context_photos="caption")
    batch = collate([formatter.encode(s) for s in _samples()], PhotoTensors(), pad_id=model.tokenizer.pad_token_id, context_size=1)
    out = model(batch)
    assert torch.isfinite(out.text_loss) and out.image_loss is None
    out.loss.backward()
    assert model.llm.get_input_embeddings().weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():  # larger weights so that the next-token scores differ between prompts
        for param in model.llm.parameters():
            param.mul_(4)
    responder = Responder(model, formatter, PhotoTensors())
    contexts = [s.context for s in _samples()]
    speakers = [s.response.speaker for s in _samples()]
    first_alone = _first_scores(model, responder, contexts[:1], speakers[:1])
    together = _first_scores(model, responder, contexts, speakers)  # the first prompt is the shorter: left-padded
    assert torch.allclose(first_alone[0], together[0], atol=1e-4)
    replies = responder.respond(contexts, speakers, GenerationSettings(max_new_tokens=5, draw_photos=False))
    assert len(replies) == 2 and all(isinstance(r.text, str) for r in replies)


def _first_scores(model, responder, contexts, speakers):
    embeds, mask = responder.prompt_inputs(contexts, speakers)
    output = model.llm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=1, do_sample=False,
                                output_scores=True, return_dict_in_generate=True,
                                pad_token_id=model.tokenizer.pad_token_id, eos_token_id=model.tokenizer.eos_token_id)
    return output.scores[0]


def test_a_gpt2_llm_gets_the_image_loss_gradient_through_the_bridge(gpt2_parts, tmp_path):
    from PIL import Image

    from photodialog.models.batch import PhotoTensors, collate
    from photodialog.models.formatting import DialogueFormatter
    from photodialog.models.image_generator import image_to_tensor

    model = _gpt2_model(gpt2_parts, ["llm", "generator"], "sentence")
    formatter = DialogueFormatter(model.tokenizer, photo_slots=0, context_photos="caption")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "car.png")
    photos = PhotoTensors(target_transform=lambda image: image_to_tensor(image, 16))
    samples = _samples(str(tmp_path / "car.png"))
    batch = collate([formatter.encode(s) for s in samples], photos, pad_id=model.tokenizer.pad_token_id, context_size=1)
    assert batch.target_pixels is not None and len(batch.captions) == 1
    out = model(batch, tau=0.5, alpha=1.0, text_weight=0.0)  # the image loss alone
    assert out.image_loss is not None and torch.isfinite(out.image_loss)
    out.loss.backward()
    assert model.llm.get_output_embeddings().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("flags", [[], ["--config", "tiny-e2e", "--baseline", "pipeline"]])
def test_train_asks_for_a_recipe_or_a_baseline_one_of_the_two(flags, tmp_path, capsys):
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2
    assert "give a recipe (--config CONFIG) or a baseline (--baseline NAME)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()

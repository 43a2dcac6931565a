"""An export's parts load and run with stock diffusers and transformers, in a process that never
imports photodialog; its model card follows the Hub's conventions; it names no local path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from photodialog.data.schema import Photo, Turn
from photodialog.export import export_checkpoint
from photodialog.system import DialogueSystem
from photodialog.warm_start import EXPORT_FILE

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
TINY_RUN_OVERRIDES = [
    "max_steps=1", "train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000",
    "train.save_every_steps=1", "model.image_loss_repeats=1", "train.warmup_steps=1",
]


def stock(script: str, cwd: Path) -> dict:
    """Run ``script`` in a fresh interpreter that must not import photodialog; its last stdout line as JSON."""
    code = textwrap.dedent(script) + "\nimport sys\nassert 'photodialog' not in sys.modules, 'imported photodialog'\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HOME": str(cwd)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stock") / "tiny-e2e"
    export_checkpoint(tiny_run, out, progress=False)
    return out


def test_the_generator_draws_with_diffusers_pipeline_classes(exported, tmp_path):
    result = stock(f"""
        import json, torch
        from diffusers import DiffusionPipeline, StableDiffusionPipeline
        pipe = DiffusionPipeline.from_pretrained({str(exported / "diffusion")!r})
        StableDiffusionPipeline.from_pretrained({str(exported / "diffusion")!r})
        pipe.set_progress_bar_config(disable=True)
        photo = pipe("a red car at the beach", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
        photo.save("drawn.png")
        print(json.dumps({{"class": type(pipe).__name__, "size": photo.size}}))
    """, tmp_path)
    assert result["class"] == "StableDiffusionPipeline"
    assert result["size"] == [32, 32] and (tmp_path / "drawn.png").stat().st_size > 0
    assert json.loads((exported / EXPORT_FILE).read_text())["classes"]["diffusion"] == "StableDiffusionPipeline"


def test_the_chat_template_lays_out_a_dialogue_as_photodialog_does(exported, tmp_path):
    dialogues = [
        [Turn("user", "hi there"), Turn("assistant", "hello, how are you?"),
         Turn("user", "look [IMG] a red car at the beach [/IMG] nice", photos=[Photo(caption="a red car at the beach")])],
        [Turn("assistant", "I am here [IMG] a blue cat [/IMG]", photos=[Photo(caption="a blue cat")]), Turn("user", "and?")],
    ]
    messages = [[{"role": t.speaker, "content": t.text} for t in d] for d in dialogues]
    result = stock(f"""
        import json, torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained({str(exported / "llm")!r})
        llm = AutoModelForCausalLM.from_pretrained({str(exported / "llm")!r})
        out = []
        for messages in {messages!r}:
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tokenizer(text, add_special_tokens=False).input_ids
            with torch.no_grad():
                next_id = int(llm(torch.tensor([ids])).logits[0, -1].argmax())
            out.append({{"ids": ids, "next": next_id}})
        print(json.dumps(out))
    """, tmp_path)
    system = DialogueSystem.from_pretrained(exported, "cpu")
    for dialogue, got in zip(dialogues, result):
        ids = system.formatter.encode_prompt(dialogue, "assistant")[0]
        assert got["ids"] == ids
        with torch.no_grad():
            assert got["next"] == int(system.model.llm(torch.tensor([ids])).logits[0, -1].argmax())


def test_the_perceptron_loads_whole_with_the_stock_blip2_class(exported, tiny_world, tmp_path):
    photo = next((tiny_world / "photos").rglob("*.png"))
    result = stock(f"""
        import json
        from PIL import Image
        from transformers import AutoImageProcessor, Blip2VisionModelWithProjection
        model, info = Blip2VisionModelWithProjection.from_pretrained({str(exported / "blip2")!r}, output_loading_info=True)
        processor = AutoImageProcessor.from_pretrained({str(exported / "blip2")!r})
        pixels = processor(images=Image.open({str(photo)!r}), return_tensors="pt").pixel_values
        embeds = model(pixel_values=pixels).image_embeds
        print(json.dumps({{"missing": sorted(info["missing_keys"]), "unexpected": sorted(info["unexpected_keys"]),
                          "embeds": embeds.tolist(), "pixels": pixels.tolist()}}))
    """, tmp_path)
    assert result["missing"] == [] and result["unexpected"] == []
    from PIL import Image

    perceptron = DialogueSystem.from_pretrained(exported, "cpu").model.perceptron
    pixels = perceptron.preprocess([Image.open(photo)])
    torch.testing.assert_close(torch.tensor(result["pixels"]), pixels, atol=2e-2, rtol=0)  # two resize implementations
    with torch.no_grad():
        expected = torch.nn.functional.normalize(perceptron(torch.tensor(result["pixels"])), dim=-1)
    torch.testing.assert_close(torch.tensor(result["embeds"]), expected, atol=1e-5, rtol=1e-4)
    card = (exported / "README.md").read_text()
    assert "`blip2/` with `Blip2VisionModelWithProjection`" in card


def test_no_local_path_in_any_exported_file(exported, tiny_run, tiny_world):
    machine = [str(tiny_run.parent).encode(), str(tiny_world.parent).encode(), str(Path.home()).encode()]
    for file in exported.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert not [p for p in machine if p in data], file


def test_a_pixel_space_generator_claims_no_pipeline(tiny_world, tmp_path):
    from photodialog.config import load_config
    from photodialog.training.trainer import Trainer

    run = tmp_path / "pixel-run"
    overrides = [f"data.path={tiny_world}", *TINY_RUN_OVERRIDES, "model.tiny.latent=false", "model.tiny.image_size=16"]
    Trainer(load_config("tiny-e2e", overrides), run, progress=False).run()
    out = export_checkpoint(run, tmp_path / "export", progress=False).out
    assert (out / "diffusion" / "unet" / "config.json").is_file() and not (out / "diffusion" / "model_index.json").exists()
    assert "pixel space, no pipeline" in json.loads((out / EXPORT_FILE).read_text())["classes"]["diffusion"]
    assert DialogueSystem.from_pretrained(out, "cpu").model.generator.vae is None  # photodialog still loads it


# --- the model card's Hub metadata ----------------------------------------------------------


def _card_data(text: str):
    from huggingface_hub import ModelCard

    return ModelCard(text).data


def _fake_system(data_path: Path, preset: str = "tiny") -> SimpleNamespace:
    model = SimpleNamespace(preset=preset, llm="meta-llama/Llama-2-7b-chat-hf", blip2="Salesforce/blip2-opt-2.7b-coco",
                            diffusion="/home/me/sd-2-1")
    return SimpleNamespace(config=SimpleNamespace(model=model, data=SimpleNamespace(path=str(data_path))), kind="end-to-end")


@pytest.mark.parametrize("folder", ["dialogcc", "my-dialogues"])
def test_licence_and_datasets_come_from_the_records_not_the_folder_name(folder, tmp_path):
    from photodialog.model_card import _data, _front_matter

    data = tmp_path / folder
    shutil.copytree(FIXTURES / "dialogcc", data)
    card = _card_data(_front_matter(_fake_system(data), {}, []) + "\n")
    assert card.license == "cc-by-nc-sa-4.0" and card.datasets == ["passing2961/dialogcc"]
    assert card.pipeline_tag == "any-to-any" and card.library_name == "photodialog"
    assert "non-commercial" in _data(_fake_system(data), [])
    photochat = tmp_path / "dialogcc-named-photochat"
    shutil.copytree(FIXTURES / "photochat", photochat)
    assert _card_data(_front_matter(_fake_system(photochat), {}, []) + "\n").license == "cc-by-4.0"


def test_paper_base_models_are_hub_ids_only(tmp_path):
    from photodialog.model_card import _front_matter

    card = _card_data(_front_matter(_fake_system(tmp_path / "gone", preset="paper"), {}, []) + "\n")
    assert card.base_model == ["meta-llama/Llama-2-7b-chat-hf", "Salesforce/blip2-opt-2.7b-coco"]  # not /home/me/sd-2-1
    assert card.license == "other"


def test_model_index_holds_the_eval_results(tmp_path):
    from photodialog.model_card import _front_matter

    eval_file = tmp_path / "test.json"
    eval_file.write_text(json.dumps({
        "data": {"dataset": "synthetic", "split": "test"}, "seeds": [0, 1],
        "aggregate": {"bleu1": {"available": True, "mean": 12.345, "std": 0.5, "n": 2},
                      "probe_acc_generator_all": {"available": True, "mean": 40.0, "std": 1.0, "n": 2},
                      "fid": {"available": False, "reason": "no weights"}}}))
    card = _card_data(_front_matter(_fake_system(tmp_path / "gone"), {}, [eval_file]) + "\n")
    results = {r.metric_type: r for r in card.eval_results}
    assert set(results) == {"bleu1", "probe_acc_generator_all"}
    assert results["bleu1"].metric_value == 12.345 and results["bleu1"].dataset_split == "test"
    assert results["bleu1"].task_type == "any-to-any" and card.license == "apache-2.0"  # synthetic, from the eval JSON

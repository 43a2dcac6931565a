"""`photodialog export`: a run's checkpoint as a self-contained folder that loads without the run.

The round trip: the tiny run (session fixture) is exported, the run folder is moved out of the
way, and `chat --json`, `eval` and the drawn photos from the export match those from the run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from photodialog.cli.main import main
from photodialog.errors import UserError
from photodialog.export import export_checkpoint, push_to_hub
from photodialog.warm_start import EXPORT_FILE, is_export
from photodialog.system import DialogueSystem, load_system

# The session's tiny_run recipe (tests/conftest.py), for the LoRA run below.
TINY_RUN_OVERRIDES = [
    "max_steps=2", "train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000",
    "train.save_every_steps=1", "model.image_loss_repeats=1", "train.warmup_steps=1",
]


def _params(system) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in system.model.state_dict().items()}


@pytest.fixture(scope="module")
def world(tiny_world, tmp_path_factory):
    """A copy of the session world with a probe (so eval scores the drawn photos too)."""
    copy = tmp_path_factory.mktemp("export-world") / "world"
    shutil.copytree(tiny_world, copy)
    assert main(["data", "probe", str(copy), "--epochs", "1", "--quiet"]) == 0
    return copy


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "tiny-e2e"
    result = export_checkpoint(tiny_run, out, progress=False)
    return result


def test_export_holds_every_part_in_published_layouts(exported):
    out = exported.out
    for path in ("README.md", EXPORT_FILE, "config.yaml", "state.json", "trainable.safetensors",
                 "llm/config.json", "llm/model.safetensors", "llm/tokenizer.json",
                 "blip2/config.json", "blip2/model.safetensors",
                 "diffusion/model_index.json", "diffusion/unet/config.json", "diffusion/text_encoder/model.safetensors",
                 "diffusion/tokenizer/tokenizer.json", "diffusion/scheduler/scheduler_config.json"):
        assert (out / path).is_file(), path
    info = json.loads((out / EXPORT_FILE).read_text())
    assert info["step"] == 2 and info["weights"] == "merged" and info["weights_averaged"] is True
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert info["bytes"] == size == exported.bytes  # the size it states is the folder's, card included
    assert info["load_seconds"] > 0


def test_parts_load_with_transformers_and_diffusers(exported):
    from diffusers import UNet2DConditionModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exported.out / "llm")
    assert "[IMG]" in tokenizer.get_vocab() and "[/IMG]" in tokenizer.get_vocab()
    llm = AutoModelForCausalLM.from_pretrained(exported.out / "llm")
    assert llm.get_input_embeddings().weight.shape[0] == len(tokenizer)
    UNet2DConditionModel.from_pretrained(exported.out / "diffusion", subfolder="unet")


def test_same_weights_as_the_run_with_its_moving_average(tiny_run, exported):
    from_run = _params(load_system(tiny_run, "cpu"))
    from_export = _params(DialogueSystem.from_pretrained(exported.out, "cpu"))
    assert from_run.keys() == from_export.keys()
    for name, value in from_run.items():
        assert torch.equal(value, from_export[name]), name
    raw = _params(load_system(tiny_run, "cpu", use_average=False))
    assert any(not torch.equal(raw[n], v) for n, v in from_export.items())  # the average, not the last step


def _moved_away(tiny_run: Path, tmp_path: Path) -> Path:
    """The run folder renamed (so nothing can quietly read from it); returned to restore."""
    hidden = tmp_path / "run-hidden"
    tiny_run.rename(hidden)
    return hidden


def _chat(checkpoint, out, photo) -> dict:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["chat", "--checkpoint", str(checkpoint), "--device", "cpu", "--json", "--out", str(out),
                     "--message", "what do you think of it", "--photo", str(photo),
                     "--decoding", "sample", "--temperature", "3", "--seed", "7", "--diffusion-steps", "2"])
    assert code == 0
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


def _eval(checkpoint, data, out) -> dict:
    code = main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--seeds", "0",
                 "--max-samples", "20", "--diffusion-steps", "2", "--decoding", "sample", "--temperature", "3", "--device", "cpu",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    return json.loads(Path(out).read_text())


def test_round_trip_chat_and_eval_match_the_run(tiny_run, exported, world, tmp_path):
    photo = next((world / "photos").rglob("*.png"))
    run_reply = _chat(tiny_run, tmp_path / "chat-run", photo)
    run_eval = _eval(tiny_run, world, tmp_path / "eval-run" / "test.json")
    hidden = _moved_away(tiny_run, tmp_path)
    try:
        export_reply = _chat(exported.out, tmp_path / "chat-export", photo)
        export_eval = _eval(exported.out, world, tmp_path / "eval-export" / "test.json")
    finally:
        hidden.rename(tiny_run)
    assert run_reply["text"] and run_reply == {**export_reply, "photos": run_reply["photos"]}
    for a, b in zip(run_reply["photos"], export_reply["photos"]):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert run_eval["aggregate"] == export_eval["aggregate"] and run_eval["per_seed"] == export_eval["per_seed"]
    assert run_eval["aggregate"]["bleu1"]["mean"] > 0  # sampled replies: text numbers that could differ
    assert run_eval["aggregate"]["probe_acc_generator_all"]["available"]
    assert export_eval["model"]["step"] == 2
    drawn = sorted((tmp_path / "eval-run" / "test-photos").rglob("*.png"))
    assert drawn
    for path in drawn:
        twin = tmp_path / "eval-export" / "test-photos" / path.relative_to(tmp_path / "eval-run" / "test-photos")
        assert path.read_bytes() == twin.read_bytes(), path.name


def test_model_card_says_what_the_model_is(tiny_run, tmp_path):
    from photodialog.checkpoints import resolve_checkpoint

    checkpoint = resolve_checkpoint(tiny_run)
    eval_file = checkpoint / "eval" / "test.json"
    eval_file.parent.mkdir(exist_ok=True)
    eval_file.write_text(json.dumps({
        "model": {"checkpoint": str(checkpoint)}, "data": {"dataset": "synthetic", "split": "test", "path": "w",
                                                            "targets": 6, "photo_targets": 1},
        "settings": {"decoding": "greedy", "diffusion_steps": 20, "max_samples": 6}, "seeds": [0, 1],
        "aggregate": {"bleu1": {"available": True, "mean": 12.345, "std": 0.5, "n": 2},
                      "fid": {"available": False, "reason": "no weights"}}}))
    try:
        result = export_checkpoint(tiny_run, tmp_path / "out", progress=False)
    finally:
        shutil.rmtree(eval_file.parent)
    card = (tmp_path / "out" / "README.md").read_text()
    info = json.loads((tmp_path / "out" / EXPORT_FILE).read_text())
    assert card.startswith("---\nlibrary_name: photodialog\n")
    for heading in ("## Architecture and parts", "## Data", "## Training recipe", "## Evaluation", "## Intended use and limits"):
        assert heading in card
    assert "| bleu1 | 12.35 | 0.50 | 2 |" in card and "| fid |" not in card
    assert "photodialog eval --checkpoint THIS_FOLDER" in card and "--seeds 0,1" in card
    assert str(checkpoint) not in card  # no path of the training machine
    assert "Trained 2 steps" in card and "licence" in card
    assert f"size {info['bytes'] / 1e6:.1f} MB" in card and f"load time {info['load_seconds']:.2f} s" in card
    assert result.eval_files == [str(eval_file)]


def test_refuses_a_folder_that_is_not_empty(tiny_run, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", "--checkpoint", str(tiny_run), "--out", str(out), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    export_checkpoint(tiny_run, empty, progress=False)  # an empty folder is fine
    assert is_export(empty)
    assert not list(tmp_path.glob(".*.part"))


def test_not_an_export(tmp_path, tiny_run):
    with pytest.raises(UserError, match="no export folder"):
        DialogueSystem.from_pretrained(tmp_path / "nothing")
    with pytest.raises(UserError, match="export.json"):
        DialogueSystem.from_pretrained(tiny_run)


class FakeApi:
    calls: list = []

    def __init__(self, token=None):
        FakeApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        FakeApi.calls.append(("upload_folder", kwargs))


def test_push_to_hub_uploads_the_folder(exported, monkeypatch, capsys, tiny_run, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls = []
    assert push_to_hub(exported.out, "me/tiny", private=True, token="t0k") == "https://huggingface.co/me/tiny"
    (_, token), (_, repo, create), (_, upload) = FakeApi.calls
    assert token == "t0k" and repo == "me/tiny" and create["private"] is True and create["exist_ok"] is True
    assert upload["folder_path"] == str(exported.out) and upload["repo_id"] == "me/tiny"
    FakeApi.calls = []
    code = main(["export", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "e"), "--quiet", "--push-to-hub", "me/x"])
    assert code == 0 and [c[0] for c in FakeApi.calls] == ["init", "create_repo", "upload_folder"]
    assert "pushed to https://huggingface.co/me/x" in capsys.readouterr().out


def test_push_to_hub_bad_repo_id_fails_before_exporting(tiny_run, tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls = []
    code = main(["export", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "e"), "--push-to-hub", "not a//repo"])
    assert code == 2 and "not a Hub repository id" in capsys.readouterr().err
    assert not (tmp_path / "e").exists() and FakeApi.calls == []


def test_hub_refusal_is_a_message(exported, monkeypatch):
    import huggingface_hub

    class Offline(FakeApi):
        def create_repo(self, repo_id, **kwargs):
            raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "HfApi", Offline)
    with pytest.raises(UserError, match="could not push .* no network"):
        push_to_hub(exported.out, "me/tiny")


# --- LoRA: merged into the base weights, or kept beside them ---------------------------------


@pytest.fixture(scope="module")
def lora_run(tiny_world, tmp_path_factory):
    from photodialog.config import load_config
    from photodialog.training.trainer import Trainer

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-lora"
    overrides = [f"data.path={tiny_world}", *TINY_RUN_OVERRIDES, "model.trainable.llm=lora", "model.trainable.unet=lora",
                 "model.lora.train_embeddings=false", "train.ema_decay=0", "train.lr=0.05"]
    Trainer(load_config("tiny-e2e", overrides), run_dir, progress=False).run()
    return run_dir


def _outputs(system) -> tuple[torch.Tensor, torch.Tensor]:
    """LLM logits and a UNet prediction on fixed inputs: what the LoRA layers change."""
    torch.manual_seed(0)
    ids = torch.randint(0, len(system.model.tokenizer), (1, 12))
    unet = system.model.generator.unet
    size = unet.config.sample_size
    sample = torch.randn(1, unet.config.in_channels, size, size)
    context = torch.randn(1, 5, unet.config.cross_attention_dim)
    with torch.no_grad():
        return system.model.llm(ids).logits, unet(sample, 10, encoder_hidden_states=context).sample


def test_lora_merged_and_kept_give_the_run_outputs(lora_run, tmp_path):
    run = load_system(lora_run, "cpu")
    trained_b = [p for n, p in run.model.named_parameters() if "lora_B" in n]
    assert trained_b and any(p.abs().max() > 0 for p in trained_b)  # the adapters do something
    merged = export_checkpoint(lora_run, tmp_path / "merged", progress=False)
    kept = export_checkpoint(lora_run, tmp_path / "kept", keep_adapters=True, progress=False)
    from_merged, from_kept = DialogueSystem.from_pretrained(merged.out), DialogueSystem.from_pretrained(kept.out)
    assert not any("lora_" in n for n, _ in from_merged.model.named_parameters())
    kept_params = dict(from_kept.model.named_parameters())
    for name, value in run.model.named_parameters():
        assert torch.equal(value, kept_params[name]), name  # adapters and base exactly as trained
    expected = _outputs(run)
    for got, want in zip(_outputs(from_merged), expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for got, want in zip(_outputs(from_kept), expected):
        assert torch.equal(got, want)
    base = load_system(lora_run, "cpu")
    for module in base.model.modules():  # the same model with the adapters switched off differs
        if hasattr(module, "disable_adapters") and hasattr(module, "lora_A"):
            module.enable_adapters(False)
    assert not torch.allclose(_outputs(base)[0], expected[0])
    assert "LoRA adapters of llm, unet merged" in (merged.out / "README.md").read_text()
    assert "llm: frozen" in (merged.out / "config.yaml").read_text()
    assert "llm: lora" in (kept.out / "config.yaml").read_text()


# --- a pipeline: its image run names its text run; the export holds both ----------------------


@pytest.fixture(scope="module")
def pipeline_run(world, tmp_path_factory):
    """The tiny pipeline (its context photos captioned by the world's probe), two steps per part."""
    from photodialog.training.baselines import baseline_recipes, train_baseline

    out = tmp_path_factory.mktemp("runs") / "tiny-pipeline"
    return train_baseline(baseline_recipes("pipeline"), out, [f"data.path={world}", *TINY_RUN_OVERRIDES], progress=False)


def test_pipeline_export_needs_neither_run(pipeline_run, tmp_path, world):
    joined = load_system(pipeline_run.image_dir, "cpu")
    result = export_checkpoint(pipeline_run.image_dir, tmp_path / "pipeline", progress=False)
    photo = next((world / "photos").rglob("*.png"))
    run_reply = _chat(pipeline_run.image_dir, tmp_path / "chat-run", photo)
    hidden = [run.rename(tmp_path / f"hidden-{i}") for i, run in enumerate((pipeline_run.text_dir, pipeline_run.image_dir))]
    try:
        system = DialogueSystem.from_pretrained(result.out, "cpu")
        export_reply = _chat(result.out, tmp_path / "chat-export", photo)
    finally:
        for run, original in zip(hidden, (pipeline_run.text_dir, pipeline_run.image_dir)):
            run.rename(original)
    assert system.kind == "pipeline" and json.loads((result.out / EXPORT_FILE).read_text())["kind"] == "pipeline"
    expected = _params(joined)
    got = _params(system)
    assert expected.keys() == got.keys() and all(torch.equal(v, got[n]) for n, v in expected.items())
    assert run_reply["text"] and run_reply == {**export_reply, "photos": run_reply["photos"]}


def test_model_card_says_when_the_own_caption_trained_the_llm_only():
    from types import SimpleNamespace

    from photodialog.config import load_config
    from photodialog.model_card import _recipe

    joint = _recipe(SimpleNamespace(config=load_config("tiny-e2e")), None)
    apart = _recipe(SimpleNamespace(config=load_config("tiny-e2e", ["model.caption_source=argmax", "model.own_caption_path=llm_only"])), None)
    assert "trains the LLM only" not in joint
    assert "caption source `argmax`" in apart and "trains the LLM only" in apart

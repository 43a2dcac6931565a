"""`photodialog bench llm` and the trainer's competence lines: what a pretraining run shows of itself."""

from __future__ import annotations

import json

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.cli.main import main
from photodialog.config import load_config
from photodialog.training.trainer import Trainer

KEYS = {"caption_acc_object", "caption_acc_colour", "caption_acc_scene", "caption_acc_all", "share_f1",
        "reply_acc_object", "reply_acc_object_blank"}


SHORT_VISION = ["model.tiny.vision_pretrain_steps=2", "model.tiny.vision_pretrain_photos=64"]

def test_a_text_pretraining_run_prints_its_competence_at_every_checkpoint_and_bench_llm_draws_the_curve(
        tiny_world, tmp_path, caplog):
    run = tmp_path / "pretrain"
    config = load_config("tiny-pretrain-text", [f"data.path={tiny_world}", "train.max_steps=4", "train.save_every_steps=2",
                                                "train.batch_size=4", "train.micro_batch_size=4", "train.competence_turns=40",
                                                *SHORT_VISION])  # the recipe's 8,000 classifier steps take minutes
    with caplog.at_level("INFO", logger="photodialog"):
        Trainer(config, run, progress=False).run()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [line for line in lines if line["kind"] == "competence"]
    assert [line["step"] for line in logged] == [2, 4]
    assert all(KEYS <= set(line) and 0 <= line["caption_acc_object"] <= 100 for line in logged)
    assert "competence at step 4" in caplog.text

    out = tmp_path / "llm.json"
    assert main(["bench", "llm", "--run", str(run), "--out", str(out), "--no-progress", "--json"]) == 0
    result = json.loads(out.read_text())
    assert [point["step"] for point in result["curve"]] == [read_state(c).step for c in list_checkpoints(run)] == [2, 4]
    assert all(KEYS <= set(point) for point in result["curve"])
    assert result["split"] == "test" and result["turns"] > 0 and result["machine"]["cpu"]
    # what the bench scores at the last checkpoint is what the trainer logged, on another split: both are real scores
    assert result["shipped"]["caption_acc_object"] >= 0


def test_bench_llm_names_a_folder_without_checkpoints(tmp_path, capsys):
    assert main(["bench", "llm", "--run", str(tmp_path)]) == 2
    assert "has no checkpoint" in capsys.readouterr().err

"""`photodialog eval` and `photodialog eval compare` from the command line."""

from __future__ import annotations

import json
import shutil

import pytest
from evalloop_helpers import FAST_FLAGS

from photodialog.cli.main import main
from photodialog.evaluation.metrics import MetricSet, SeedResult, build_result, load_result


def test_eval_writes_next_to_the_checkpoint_by_default_and_succeeds_without_usable_inception(
    tiny_run, eval_world, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    data = tmp_path / "photochat-like"  # the world without world.json: an ordinary dataset
    shutil.copytree(eval_world, data, ignore=shutil.ignore_patterns("probe", "world.json"))
    bogus = tmp_path / "inception.pth"
    bogus.write_bytes(b"not a state dict")
    code = main(["eval", "--checkpoint", str(run), "--data", str(data), "--seeds", "3", "--max-samples", "4",
                 "--inception-weights", str(bogus), *FAST_FLAGS])
    assert code == 0
    result = load_result(run / "eval" / "test.json")
    assert (run / "eval" / "test.md").is_file() and (run / "eval" / "test-predictions.jsonl").is_file()
    assert result["seeds"] == [3] and result["data"]["dataset"] == "photochat-like"
    assert "cannot read Inception weights" in result["aggregate"]["fid"]["reason"]
    assert not any(key.startswith("probe_") for key in result["aggregate"])  # no world.json, no probe
    out = capsys.readouterr().out
    assert "BLEU-1" in out and "share F1" in out and str(run / "eval" / "test.json") in out


def test_a_world_without_its_probe_marks_the_probe_scores_unavailable_with_the_fix(tiny_run, eval_world, tmp_path):
    world = tmp_path / "world"
    shutil.copytree(eval_world, world, ignore=shutil.ignore_patterns("probe"))
    out = tmp_path / "eval" / "dev.json"
    code = main(["eval", "--checkpoint", str(tiny_run), "--data", str(world), "--split", "dev", "--seeds", "0",
                 "--max-samples", "2", "--out", str(out), *FAST_FLAGS])
    assert code == 0
    entry = load_result(out)["aggregate"]["probe_acc_gold_object"]
    assert entry["available"] is False and f"photodialog data probe {world}" in entry["fix"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--checkpoint", "{tmp}/missing"], "checkpoint not found"),
        (["--checkpoint", "{run}", "--out", "{tmp}/result.txt"], "must name a .json file"),
        (["--checkpoint", "{run}", "--data", "{tmp}/nowhere"], "does not exist"),
        ([], "needs --checkpoint"),
        (["--checkpoint", "{run}", "--device", "tpu9"], "unknown device"),
    ],
)
def test_bad_input_is_a_message_and_exit_code_2(arguments, message, tiny_run, tmp_path, capsys):
    filled = [a.format(tmp=tmp_path, run=tiny_run) for a in arguments]
    assert main(["eval", *filled]) == 2
    assert message in capsys.readouterr().err


def test_bad_seeds_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["eval", "--checkpoint", "x", "--seeds", "0,0"])
    assert stopped.value.code == 2
    assert "each seed once" in capsys.readouterr().err


def _result(name: str, bleu1: float, fid: float) -> dict:
    values = {"bleu1": bleu1, "bleu2": 2.0, "rouge_l": 10.0, "is": 14.0, "is_split_std": 1.0, "fid": fid,
              "share_precision": 50.0, "share_recall": 50.0, "share_f1": 50.0}
    seeds = [SeedResult(seed).add(MetricSet(values=dict(values))) for seed in (0, 1)]
    return build_result(model={"name": name}, data={"dataset": "synthetic", "split": "test"}, seed_results=seeds)


def test_compare_prints_both_columns_and_the_differences(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(_result("pipeline", 10.65, 79.74)))
    second.write_text(json.dumps(_result("end-to-end", 12.08, 75.88)))
    table_file = tmp_path / "compare.md"
    assert main(["eval", "compare", str(first), str(second), "--out", str(table_file)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| Metric"))
    assert header == "| Metric | pipeline | end-to-end | end-to-end - pipeline |"
    assert "| BLEU-1 ↑ | 10.65 | 12.08 | +1.43 ↑ better |" in out
    assert "| FID ↓ | 79.74 | 75.88 | -3.86 ↓ better |" in out
    assert table_file.read_text(encoding="utf-8") == out


def test_compare_of_real_evaluations_with_names(e2e_eval, pipeline_eval, capsys):
    assert main(["eval", "compare", str(e2e_eval.paths.json), str(pipeline_eval), "--names", "e2e,pipe",
                 "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "e2e" in out and "pipe - e2e" in out and "BLEU-1" in out and "probe-FID" in out
    assert main(["eval", "compare", str(e2e_eval.paths.json), "--names", "a,b"]) == 2
    assert main(["eval", "compare", str(e2e_eval.paths.json / "nope.json")]) == 2

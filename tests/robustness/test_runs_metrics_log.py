"""metrics.jsonl on resume: rewritten beside and renamed (a kill during the rewrite keeps the old
log), and a last line torn by a kill does not stop the next run (issue 18 item 2)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from photodialog.cli.main import main
from photodialog.training.run_files import read_metrics
from photodialog.training.trainer import Trainer


def _rows(step_count: int) -> str:
    return "".join(json.dumps({"kind": "train", "step": step, "loss": 1.0}) + "\n" for step in range(1, step_count + 1))


def test_a_kill_while_metrics_are_rewritten_keeps_the_old_log(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    log.write_text(_rows(5), encoding="utf-8")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)  # the kill lands just before the new file takes the name
    with pytest.raises(KeyboardInterrupt):
        Trainer._drop_metrics_after(SimpleNamespace(run_dir=tmp_path), 3)
    monkeypatch.undo()
    assert log.read_text(encoding="utf-8") == _rows(5)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left either
    Trainer._drop_metrics_after(SimpleNamespace(run_dir=tmp_path), 3)
    assert log.read_text(encoding="utf-8") == _rows(3)


def test_a_torn_last_line_does_not_stop_a_resumed_run(tmp_path, run_args):
    run = tmp_path / "run"
    args = ("train.save_every_steps=1",)
    assert main(["train", *run_args(*args, "max_steps=2"), "--out", str(run)]) == 0
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"kind": "train", "step": 3, "lo')  # killed while writing step 3's line
    assert main(["train", *run_args(*args, "max_steps=3"), "--out", str(run), "--resume"]) == 0
    assert [row["step"] for row in read_metrics(run, "train")] == [1, 2, 3]
    assert '"lo\n' not in (run / "metrics.jsonl").read_text(encoding="utf-8")

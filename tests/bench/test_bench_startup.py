"""`photodialog bench startup`: the help command's start-up time and its heavy imports, as JSON."""

from __future__ import annotations

import json

from photodialog.bench.startup import StartupBenchSettings, run_startup_bench, summary_lines
from photodialog.cli.main import main


def test_the_result_times_every_run_and_finds_no_heavy_import():
    result = run_startup_bench(StartupBenchSettings(repeats=2, warmup=0))
    seconds = result["seconds"]
    assert len(seconds["runs"]) == 2 and seconds["min"] <= seconds["median"] <= seconds["max"]
    assert seconds["min"] > 0
    assert result["heavy_imports"] == []  # --help must not pay for torch
    assert "heavy libraries imported to build the parser: none" in summary_lines(result)[1]


def test_the_command_writes_json(tmp_path, capsys):
    out = tmp_path / "startup.json"
    assert main(["bench", "startup", "--repeats", "1", "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["benchmark"] == "startup" and json.loads(out.read_text())["repeats"] == 1

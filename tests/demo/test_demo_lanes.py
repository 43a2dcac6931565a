"""The demo's lanes: jobs run in order per lane, finished ones are skipped, a failure names its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from photodialog.demo import lanes
from photodialog.demo.lanes import Job, run_lanes
from photodialog.config import load_config
from photodialog.demo.run import DemoPaths, deal, eval_jobs, finetune_jobs
from photodialog.demo.plan import make_plan
from photodialog.errors import UserError


class FakeJob(Job):
    """A job whose command writes its output files (as eval does: the Markdown and predictions, the
    result last) and exits with 1 when its name says "broken"."""

    def command(self) -> list[str]:
        script = ("import pathlib, sys; out = pathlib.Path(sys.argv[1]); out.parent.mkdir(parents=True, exist_ok=True); "
                  "out.with_suffix('.md').write_text('#'); out.with_name(out.stem + '-predictions.jsonl').write_text(''); "
                  "out.write_text('{}'); sys.exit(int(sys.argv[2]))")
        return [sys.executable, "-c", script, str(self.output), "1" if "broken" in self.name else "0"]


def fake(root: Path, name: str) -> FakeJob:
    return FakeJob(name=name, args=[], output=root / f"{name}.json")


@pytest.mark.parametrize("progress", [False, True])
def test_every_job_runs_once_and_a_rerun_skips_what_is_done(tmp_path, progress, monkeypatch):
    jobs = [[fake(tmp_path, "a")], [fake(tmp_path, "b"), fake(tmp_path, "c")]]
    run_lanes(jobs, tmp_path / "logs", title="test", progress=progress)
    assert all((tmp_path / f"{n}.json").is_file() for n in "abc")
    started = []
    monkeypatch.setattr(lanes.subprocess, "Popen", lambda *a, **k: started.append(a))
    run_lanes(jobs, tmp_path / "logs", title="test", progress=False)
    assert started == []  # every output is there: nothing runs again


def test_a_failed_job_stops_its_lane_and_names_its_log(tmp_path):
    jobs = [[fake(tmp_path, "broken"), fake(tmp_path, "after")], [fake(tmp_path, "other")]]
    with pytest.raises(UserError, match=r"broken exited with code 1 \(see .*broken.log\)"):
        run_lanes(jobs, tmp_path / "logs", title="test", progress=False)
    assert not (tmp_path / "after.json").exists() and (tmp_path / "other.json").is_file()


def test_an_eval_result_without_its_other_files_is_not_done(tmp_path):
    job = fake(tmp_path, "a")
    job.output.write_text("{}")  # a kill after the JSON, before the predictions (an eval of an older version)
    assert not job.done() and job.progress() == 0
    run_lanes([[job]], tmp_path / "logs", title="test", progress=False)
    assert job.done() and (tmp_path / "a-predictions.jsonl").is_file()
    (tmp_path / ".a.eval-partial").mkdir()  # an eval of it killed half-way
    assert not job.done()


SLEEPER = """
import os, sys, time
from pathlib import Path
from photodialog.demo.lanes import Job, run_lanes

class Sleeper(Job):
    def command(self):
        return [sys.executable, "-c", "import os, time; open(os.environ['PIDS'], 'a').write(f'{os.getpid()} '); time.sleep(300)"]

root = Path(sys.argv[1])
os.environ["PIDS"] = str(root / "pids")
run_lanes([[Sleeper("a", [], root / "a.json")], [Sleeper("b", [], root / "b.json")]], root / "logs", title="test",
          progress=sys.argv[2] == "1")
"""


@pytest.mark.parametrize("progress", ["0", "1"])
def test_sigterm_stops_the_running_jobs_before_the_lanes_exit(tmp_path, progress):
    import signal
    import subprocess
    import time

    demo = subprocess.Popen([sys.executable, "-c", SLEEPER, str(tmp_path), progress], stderr=subprocess.PIPE, text=True)
    pids: list[int] = []
    for _ in range(600):
        pids = [int(p) for p in (tmp_path / "pids").read_text().split()] if (tmp_path / "pids").is_file() else []
        if len(pids) == 2:
            break
        time.sleep(0.05)
    assert len(pids) == 2, "the jobs did not start"
    demo.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=60) == 128 + signal.SIGTERM
    assert "stopping" in demo.stderr.read()
    for pid in pids:  # the jobs ended with the demo, none orphaned (a zombie's /proc entry says Z)
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z", pid


def test_a_training_job_resumes_its_run_folder_and_counts_steps(tmp_path):
    job = Job(name="t", args=["train"], output=tmp_path / "run", steps=10)
    assert "--resume" not in job.command()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 4}\nnot json\n')
    assert "--resume" in job.command() and job.progress() == 4 and not job.done()


def test_the_plan_gives_every_arm_and_seed_the_same_start_steps_and_data():
    plan = make_plan(3, ["no-bridge", "paper", "pipeline"], quick=False)
    paths = DemoPaths(Path("/demo"))
    jobs = finetune_jobs(paths, plan)
    assert len(jobs) == 9 and {j.steps for j in jobs} == {plan.finetune_steps}
    for job in jobs:
        args = " ".join(job.args)
        assert "model.init_from" not in args  # the recipe's own start: what photodialog ships
        assert f"train.max_steps={plan.finetune_steps}" in args and "data.path=/demo/world" in args
        assert "max_minutes" not in args  # budgets are steps, never wall time
        assert "train.grad_clip_per_part=true" in args  # the arms share nothing but their inputs
        assert "train.tau_anneal_steps=0" in args and "train.tau_anneal_epochs=3" in args  # tau as the paper anneals it
    seeds = [next(a for a in j.args if a.startswith("train.seed=")) for j in jobs]
    assert sorted(set(seeds)) == ["train.seed=0", "train.seed=1", "train.seed=2"]
    assert [len(lane) for lane in deal(jobs)] == [5, 4]
    assert load_config("tiny-finetune").model.init_from == ["bundled"]
    evals = eval_jobs(paths, plan)
    assert len(evals) == 9 and all("--seeds" in j.args and j.args[j.args.index("--seeds") + 1] == "0" for j in evals)


def test_quick_and_full_plans():
    quick, full = make_plan(1, ["no-bridge", "paper"], True), make_plan(4, ["no-bridge", "paper", "authors-code", "aligned"], False)
    assert quick.quick and quick.seeds == [0] and quick.eval_samples > 0 and quick.finetune_steps < full.finetune_steps
    assert full.seeds == [0, 1, 2, 3] and full.eval_samples == 0  # the whole test split, as the protocol
    assert full.omit_colour == 0.5  # the world where L_v can teach what the captions leave out
    endpoint = full.primary_endpoint
    assert endpoint["metric"] == "photo_match_colour" and endpoint["reference"] == "no-bridge" and endpoint["contrasts"] == 3
    assert endpoint["detectable_difference"] > 0 and quick.primary_endpoint["detectable_difference"] is None


def test_the_primary_endpoint_is_in_plan_json_before_anything_trains(tmp_path, monkeypatch):
    import json

    from photodialog.demo import run as demo_run

    def stop(*args, **kwargs):
        raise RuntimeError("stopped at the first stage")

    monkeypatch.setattr(demo_run, "make_world", stop)
    plan = make_plan(4, ["no-bridge", "paper", "authors-code", "aligned"], quick=False)
    with pytest.raises(RuntimeError):
        demo_run.run_demo(tmp_path / "demo", plan, progress=False)
    saved = json.loads((tmp_path / "demo" / "plan.json").read_text())
    assert saved["primary_endpoint"] == plan.primary_endpoint and saved["seeds"] == [0, 1, 2, 3]
    assert not (tmp_path / "demo" / "runs").exists()


def test_a_folder_made_with_another_plan_is_refused_and_the_same_plan_resumes(tmp_path):
    from photodialog.demo.run import _check_plan

    plan = make_plan(3, ["no-bridge", "paper"], quick=False)
    _check_plan(tmp_path, plan)
    _check_plan(tmp_path, plan)  # the same plan: resumes
    with pytest.raises(UserError, match="differs in .*seeds"):
        _check_plan(tmp_path, make_plan(2, ["no-bridge", "paper"], quick=False))


def test_the_removed_wall_clock_budget_is_refused_with_the_reason(capsys, tmp_path):
    from photodialog.cli.main import main

    assert main(["demo", "--budget-minutes", "20", "--out", str(tmp_path / "never-made")]) == 2
    assert "budgets are optimizer steps" in capsys.readouterr().err and not (tmp_path / "never-made").exists()

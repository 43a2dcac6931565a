"""The demo's training lanes: jobs run in order per lane, and the progress display reads only what it shows."""

from __future__ import annotations

import sys

import pytest

from photodialog.demo import lanes
from photodialog.demo.lanes import TrainJob, run_lanes
from photodialog.errors import UserError


def _fake_training(job: TrainJob, code: int = 0) -> list[str]:
    """A command that logs one metrics line in the job's run folder, as training does, then exits with ``code``."""
    script = ("import pathlib, sys; run = pathlib.Path(sys.argv[1]); run.mkdir(parents=True, exist_ok=True); "
              "(run / 'metrics.jsonl').write_text('{\"step\": 3}\\n'); sys.exit(int(sys.argv[2]))")
    return [sys.executable, "-c", script, str(job.run_dir), str(code)]


@pytest.fixture
def fake_jobs(monkeypatch, tmp_path):
    monkeypatch.setattr(lanes, "finished", lambda run_dir: False)
    monkeypatch.setattr(TrainJob, "command", lambda self, resume: _fake_training(self, 1 if "broken" in self.name else 0))
    reads: list = []
    real_last_step = lanes.last_step
    monkeypatch.setattr(lanes, "last_step", lambda run_dir: reads.append(run_dir) or real_last_step(run_dir))
    return tmp_path, reads


def test_without_progress_every_job_runs_and_no_metrics_are_read(fake_jobs):
    root, reads = fake_jobs
    jobs = [[TrainJob("a", "r", root / "a")], [TrainJob("b", "r", root / "b"), TrainJob("c", "r", root / "c")]]
    run_lanes(jobs, root / "logs", progress=False)
    assert all((root / name / "metrics.jsonl").is_file() for name in "abc")
    assert reads == []  # nothing shown, nothing polled


def test_a_failed_job_stops_its_lane_and_names_its_log(fake_jobs):
    root, _ = fake_jobs
    jobs = [[TrainJob("broken", "r", root / "broken"), TrainJob("after", "r", root / "after")]]
    with pytest.raises(UserError, match="broken exited with code 1"):
        run_lanes(jobs, root / "logs", progress=False)
    assert not (root / "after").exists()


def test_polling_reads_the_running_job_and_once_more_the_one_it_took_over_from(fake_jobs):
    root, reads = fake_jobs
    first, second = TrainJob("b", "r", root / "b"), TrainJob("c", "r", root / "c")
    run_lanes([[first, second]], root / "logs", progress=False)
    steps: dict = {}
    assert lanes._poll_steps(steps, None, None) is None and reads == []  # no job started yet: nothing read
    assert lanes._poll_steps(steps, first, first) is first and steps == {"b": 3} and reads == [root / "b"]
    assert lanes._poll_steps(steps, first, second) is second  # the lane moved on: b's final step, then c's
    assert steps == {"b": 3, "c": 3} and reads == [root / "b", root / "b", root / "c"]


def test_trained_steps_come_from_the_latest_checkpoint(tiny_run):
    from photodialog.training.checkpoint import list_checkpoints, read_state

    assert lanes.trained_steps(tiny_run) == read_state(list_checkpoints(tiny_run)[-1]).step > 0
    assert lanes.trained_steps(tiny_run.parent / "no-such-run") == 0

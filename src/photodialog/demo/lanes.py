"""Training several runs side by side as `photodialog train` subprocesses, with live progress.

Each lane is a list of runs trained one after the other in its own process (one CPU thread).
With progress on, the parent polls the ``metrics.jsonl`` of each lane's running job and shows
one progress bar per lane. A lane
whose run folder already holds a finished run skips it; an unfinished one continues with
``--resume``, so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.errors import UserError

STARTUP_SECONDS = 15  # per run: start Python, load the data, build the model, save the last checkpoint


@dataclass
class TrainJob:
    name: str
    recipe: str
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    minutes: float = 1.0

    def command(self, resume: bool) -> list[str]:
        cmd = [sys.executable, "-m", "photodialog", "train", "--config", self.recipe, *self.overrides,
               f"train.max_minutes={self.minutes}", "--out", str(self.run_dir), "--no-progress"]
        return cmd + (["--resume"] if resume else [])


def _latest_state(run_dir: Path):
    found = list_checkpoints(run_dir)
    return read_state(found[-1]) if found else None


def finished(run_dir: Path) -> bool:
    state = _latest_state(run_dir)
    return state is not None and state.finished


def trained_steps(run_dir: Path) -> int:
    """Optimizer steps in the run's latest checkpoint (metrics.jsonl logs only every few steps)."""
    state = _latest_state(run_dir)
    return state.step if state is not None else 0


def last_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    step = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            step = max(step, int(json.loads(line).get("step", 0)))
        except ValueError:
            continue
    return step


def run_lanes(lanes: list[list[TrainJob]], log_dir: Path, progress: bool = True) -> None:
    """Train every lane in parallel; raise ``UserError`` naming the log of a run that failed."""
    log_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    running: list[TrainJob | None] = [None] * len(lanes)  # each lane's job in training now, for the progress bars
    threads = [threading.Thread(target=_run_lane, args=(lane, log_dir, errors, running, index), daemon=True)
               for index, lane in enumerate(lanes)]
    for thread in threads:
        thread.start()
    if progress:
        _watch(lanes, threads, running)
    for thread in threads:
        thread.join()
    if errors:
        raise UserError("training failed: " + "; ".join(errors))


def _run_lane(lane: list[TrainJob], log_dir: Path, errors: list[str], running: list[TrainJob | None], index: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for job in lane:
        if finished(job.run_dir):
            continue
        running[index] = job
        log = log_dir / f"{job.name}.log"
        with log.open("a", encoding="utf-8") as handle:
            code = subprocess.call(job.command(resume=job.run_dir.exists()), stdout=handle, stderr=subprocess.STDOUT, env=env)
        if code != 0:
            errors.append(f"{job.name} exited with code {code} (see {log})")
            return


def _watch(lanes: list[list[TrainJob]], threads: list[threading.Thread], running: list[TrainJob | None]) -> None:
    """One progress bar per lane, with each run's step, until every lane is done.

    Only the job in training writes metrics, so only its ``metrics.jsonl`` is read each second
    (plus, once, the job it took over from, for its final step); the others' steps are known.
    """
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    bars = []
    for lane in lanes:
        total = sum(job.minutes * 60 + STARTUP_SECONDS for job in lane)
        names = " + ".join(job.name for job in lane)
        bars.append(tqdm(total=round(total), desc=f"train {names}", unit="s", dynamic_ncols=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s {postfix}"))
    steps = {job.name: last_step(job.run_dir) for lane in lanes for job in lane}  # runs already there when resuming
    polled: list[TrainJob | None] = [None] * len(lanes)
    started = time.time()
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        for index, (bar, lane, thread) in enumerate(zip(bars, lanes, threads)):
            elapsed = min(bar.total, round(time.time() - started)) if thread.is_alive() else bar.total
            bar.update(elapsed - bar.n)
            polled[index] = _poll_steps(steps, polled[index], running[index])
            bar.set_postfix_str(", ".join(f"{job.name} step {steps[job.name]}" for job in lane))
    for bar in bars:
        bar.close()


def _poll_steps(steps: dict[str, int], previous: TrainJob | None, current: TrainJob | None) -> TrainJob | None:
    """Read ``current``'s step into ``steps``; when the lane moved on, ``previous``'s final one too."""
    if previous is not None and previous is not current:  # it may have logged steps since the last look
        steps[previous.name] = last_step(previous.run_dir)
    if current is not None:
        steps[current.name] = last_step(current.run_dir)
    return current

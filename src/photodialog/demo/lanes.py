"""Running the demo's jobs (`photodialog train` and `photodialog eval` subprocesses) in lanes, with progress.

Each lane is a list of jobs run one after the other in its own process with one CPU thread;
lanes run side by side (two on two cores). A job whose output is already there is skipped, and
an unfinished training run continues with ``--resume``, so an interrupted demo picks up where it
stopped. One thread per process also makes every number the same on every run: no result
depends on how many cores a machine has or how busy it is, only on the seeds.

A stop of the demo (Ctrl-C, SIGTERM) stops its running jobs and waits for them, so that no trainer
outlives it and writes its run folder beside the rerun's (run folders are also locked).

Progress: one bar for the whole stage (every lane together, with tqdm's rate and the stage's
ETA) and one per lane, in optimizer steps (training) or models (evaluation); each training job's
step is read from its ``metrics.jsonl``. While a job loads its model and has logged no step yet,
its lane says so ("starting <job>") instead of sitting silently at 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.errors import UserError
from photodialog.evaluation.eval_files import EvalPaths

# One thread, and a fixed string hash order, in every job: nothing may depend on the machine or the process.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}
STOP_GRACE = 30.0  # seconds a job has to end after SIGTERM before it is killed


@dataclass
class Job:
    """One subprocess: ``photodialog train`` (``steps`` > 0, output = its run folder) or
    ``photodialog eval`` (output = its result JSON)."""

    name: str
    args: list[str]
    output: Path
    steps: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def trains(self) -> bool:
        return self.steps > 0

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "photodialog", *self.args, *self.extra]
        return cmd + (["--resume"] if self.trains and self.output.exists() else [])

    def done(self) -> bool:
        """A finished run, or an eval result with every file beside it (a half-written one runs again)."""
        if not self.trains:
            return EvalPaths(self.output).finished()
        found = list_checkpoints(self.output)
        return bool(found) and read_state(found[-1]).finished

    def progress(self) -> int:
        """Units done: optimizer steps logged so far (training), or 1 once the result exists (eval)."""
        if not self.trains:
            return int(self.done())
        return min(self.steps, logged_step(self.output))

    @property
    def units(self) -> int:
        return self.steps if self.trains else 1


def logged_step(run_dir: Path) -> int:
    """The last optimizer step a run logged in ``metrics.jsonl`` (0 when none)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    step = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            step = max(step, int(json.loads(line).get("step", 0)))
        except (ValueError, AttributeError):
            continue
    return step


def trained_steps(run_dir: Path) -> int:
    """Optimizer steps in the run's latest checkpoint."""
    found = list_checkpoints(run_dir)
    return read_state(found[-1]).step if found else 0


class Children:
    """The lanes' running subprocesses, so that a stop of the demo stops them too (and no new one starts)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: list[subprocess.Popen] = []
        self.stopping = False

    def call(self, command: list[str], **kwargs) -> int | None:
        """Run ``command`` to its end and return its exit code; None when the lanes are stopping."""
        with self._lock:
            if self.stopping:
                return None
            child = subprocess.Popen(command, **kwargs)
            self._running.append(child)
        try:
            return child.wait()
        finally:
            with self._lock:
                self._running.remove(child)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM to every running child, then SIGKILL to any still running after ``grace`` seconds; waits for them."""
        with self._lock:
            self.stopping = True
            children = list(self._running)
        for child in children:
            child.terminate()
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


class Terminated(SystemExit):
    """SIGTERM (``kill``, ``timeout``, a scheduler) while jobs run: the lanes stop their children, then exit."""


@contextlib.contextmanager
def _terminate_stops_lanes():
    """SIGTERM raises ``Terminated`` in the main thread (as Ctrl-C raises KeyboardInterrupt), so that the
    children are stopped before the demo exits; outside the main thread signals cannot be handled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_lanes(lanes: list[list[Job]], log_dir: Path, *, title: str, progress: bool = True) -> None:
    """Run every lane in parallel; raise ``UserError`` naming the log of a job that failed.

    Ctrl-C (SIGINT) or SIGTERM stops the running jobs (SIGTERM to each, waited for) before the
    exception goes on: no job outlives the demo, and a rerun resumes each from what it saved.
    """
    lanes = [lane for lane in lanes if lane]
    log_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    running: list[Job | None] = [None] * len(lanes)
    children = Children()
    threads = [threading.Thread(target=_run_lane, args=(lane, log_dir, errors, running, i, children), daemon=True)
               for i, lane in enumerate(lanes)]
    with _terminate_stops_lanes():
        try:
            for thread in threads:
                thread.start()
            if progress:
                _watch(lanes, threads, running, title)
            for thread in threads:
                thread.join()
        except BaseException:
            print(f"[demo] stopping: ending the running {title} jobs (what they saved is kept; run the same "
                  "command again to resume)", file=sys.stderr, flush=True)
            children.stop()
            raise
    if errors:
        raise UserError(f"{title} failed: " + "; ".join(errors))


def _run_lane(lane: list[Job], log_dir: Path, errors: list[str], running: list, index: int, children: Children) -> None:
    env = {**os.environ, **SINGLE_THREAD}
    for job in lane:
        if job.done():
            continue
        running[index] = job
        log = log_dir / f"{job.name}.log"
        with log.open("a", encoding="utf-8") as handle:
            code = children.call(job.command(), stdout=handle, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        if code is None:  # the lanes are stopping
            return
        if code != 0:
            errors.append(f"{job.name} exited with code {code} (see {log})")
            return
    running[index] = None


def _watch(lanes: list[list[Job]], threads: list[threading.Thread], running: list, title: str) -> None:
    """One bar per lane until every lane is done, polled once a second."""
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    unit = "step" if any(job.trains for lane in lanes for job in lane) else "model"
    done_before = sum(_units_done(lane, None) for lane in lanes)  # work an earlier invocation did
    # The whole stage: its rate counts only this invocation's work, so its ETA is honest after a resume.
    stage = tqdm(total=sum(job.units for lane in lanes for job in lane) - done_before, desc=f"{title} (all lanes)",
                 unit=unit, dynamic_ncols=True, position=0)
    bars = []
    for i, lane in enumerate(lanes):
        bar = tqdm(total=sum(job.units for job in lane), desc=f"{title} lane {i + 1}", unit=unit, dynamic_ncols=True,
                   position=i + 1)
        bar.update(_units_done(lane, None))
        bar.unpause()
        bars.append(bar)
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        for bar, lane, job in zip(bars, lanes, running):
            bar.update(_units_done(lane, job) - bar.n)
            if job is not None:
                starting = job.trains and job.progress() == 0
                bar.set_postfix_str(f"starting {job.name} (loading the model)" if starting else job.name, refresh=False)
        stage.update(sum(bar.n for bar in bars) - done_before - stage.n)
    for bar in bars:
        bar.update(bar.total - bar.n)
        bar.close()
    stage.update(stage.total - stage.n)
    stage.close()


def _units_done(lane: list[Job], current: Job | None) -> int:
    return sum(job.progress() if job is current else job.units if job.done() else 0 for job in lane)

"""`photodialog demo`: the paper's claim as a controlled experiment, at laptop scale.

Stages (each skipped when its output is already there, so a rerun resumes):

1. world: a synthetic photo-sharing world whose gold captions leave the colour out of half the
   photos (``data synth --omit-colour 0.5``) and its probe (``data probe``); ``plan.json``, written
   before it, holds the pre-registered primary endpoint;
2. fine-tuning: every arm (``demo/arms.py``) once per training seed, all from the pretrained start
   photodialog ships (the tiny LLM + perceptron of ``assets/tiny-llm``, the generator of
   ``assets/tiny-sd``), with the same data order per seed and the same number of steps;
3. evaluation of every (arm, seed) model on the test split, with one sampling seed;
4. the report: the primary endpoint's Holm-corrected verdict per arm against ``no-bridge`` and
   what the run can detect; every other metric as an exploratory difference with its 95% interval;
   learning checks, loss curves, examples, time spent, the machine.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from photodialog.data.synth import ensure_world
from photodialog.data.synth.probe import Probe, train_probe
from photodialog.demo.arms import ARMS, run_name
from photodialog.demo.lanes import Job, run_lanes
from photodialog.demo.plan import DemoPlan, expected_minutes
from photodialog.demo.report import write_report
from photodialog.errors import UserError
from photodialog.files import write_text
from photodialog.output_files import claim_folder, lock_folder

LANES = 2  # two 1-thread processes side by side: the demo's machine has 2 cores
COMMON = ["train.epochs=1000", "train.early_stopping_patience=0", "train.eval_every_epochs=1000"]


@dataclass
class DemoPaths:
    out: Path
    typed: Path | None = None
    """``--out`` as the user typed it (relative stays relative): how the report names the demo's files,
    so its commands work from where the demo was started and name no other machine's folders."""

    @property
    def world(self) -> Path:
        return self.out / "world"

    def run(self, name: str) -> Path:
        return self.out / "runs" / name

    def eval_json(self, name: str) -> Path:
        return self.out / "eval" / f"{name}.json"

    @property
    def logs(self) -> Path:
        return self.out / "logs"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def make_world(paths: DemoPaths, plan: DemoPlan, progress: bool) -> None:
    ensure_world(paths.world, dialogues=plan.dialogues, seed=0, image_size=64, progress=progress, omit_colour=plan.omit_colour)
    try:
        Probe.load(paths.world)
    except Exception:  # noqa: BLE001 - no probe yet (or an unreadable one): train it
        say("training the world's photo probe (the objective judge of generated photos)")
        # One thread, like every other stage: the probe's weights must not depend on the machine.
        report = train_probe(paths.world, epochs=plan.probe_epochs, progress=progress, threads=1)
        say(f"probe test accuracy: {', '.join(f'{k} {v:.1%}' for k, v in report.accuracy.items())}")


def finetune_jobs(paths: DemoPaths, plan: DemoPlan) -> list[Job]:
    """Every arm once per training seed, from the same pretrained start: the one photodialog ships
    (the recipe's ``model.init_from: [bundled]`` and ``model.tiny.diffusion_source: bundled``)."""
    # tau as the paper anneals it: 1 -> 0.01 over the first three epochs (train.tau_anneal_epochs; the
    # arms that fix tau ignore it), not over the run's few steps
    shared = [f"data.path={paths.world.resolve()}", "train.tau_anneal_steps=0", "train.tau_anneal_epochs=3",
              "train.grad_clip_per_part=true"]
    jobs = []
    for seed in plan.seeds:
        for arm in plan.arms:
            name = run_name(arm, seed)
            jobs.append(_train_job(name, "tiny-finetune", paths.run(name), plan.finetune_steps,
                                   [*shared, *ARMS[arm].overrides, f"train.seed={seed}"]))
    return jobs


def eval_jobs(paths: DemoPaths, plan: DemoPlan) -> list[Job]:
    jobs = []
    for seed in plan.seeds:
        for arm in plan.arms:
            name = run_name(arm, seed)
            args = ["eval", "--checkpoint", str(paths.run(name)), "--data", str(paths.world), "--split", "test",
                    "--seeds", str(plan.eval_seed), "--out", str(paths.eval_json(name)), "--max-samples", str(plan.eval_samples),
                    "--name", arm, "--diffusion-steps", str(plan.diffusion_steps), "--no-progress"]
            jobs.append(Job(name=f"eval-{name}", args=args, output=paths.eval_json(name)))
    return jobs


def _train_job(name: str, recipe: str, run_dir: Path, steps: int, overrides: list[str]) -> Job:
    args = ["train", "--config", recipe, *COMMON, f"train.max_steps={steps}", f"train.save_every_steps={max(1, steps // 4)}",
            *overrides, "--out", str(run_dir), "--no-progress"]
    return Job(name=name, args=args, output=run_dir, steps=steps)


def deal(jobs: list[Job], lanes: int = LANES) -> list[list[Job]]:
    """Jobs dealt round-robin into ``lanes`` (neighbours of similar cost land in different lanes)."""
    return [jobs[i::lanes] for i in range(lanes)]


def run_demo(out: str | Path, plan: DemoPlan, *, progress: bool = True) -> Path:
    """Run every stage; returns the path of ``report.md``.

    ``out`` must be missing, empty or a folder an earlier demo made (else ``UserError``); it is
    locked while the demo runs, so a second demo on it is refused, naming the first.
    """
    # Only a folder this command made (or a new or empty one): the report replaces files of its own names.
    paths = DemoPaths(claim_folder(out, "demo", made_before=lambda folder: (folder / "plan.json").is_file()), Path(out))
    with lock_folder(paths.out, "the demo folder"):  # one demo at a time writes it
        return _run_stages(paths, plan, progress)


def _run_stages(paths: DemoPaths, plan: DemoPlan, progress: bool) -> Path:
    _check_plan(paths.out, plan)
    timer = StageTimer(paths.out)
    say(f"about {expected_minutes(plan, LANES):.0f} min on {LANES} idle cores for the whole demo (the stages' bars give "
        "their own ETAs); interrupt it any time, the same command resumes")
    say(f"1/4 world ({plan.dialogues} dialogues) and its probe")
    with timer("world"):
        make_world(paths, plan, progress)
    runs = len(plan.arms) * len(plan.seeds)
    say(f"2/4 fine-tuning {len(plan.arms)} arms x {len(plan.seeds)} training seeds = {runs} runs of "
        f"{plan.finetune_steps} steps each, two side by side, all from the pretrained start photodialog ships")
    with timer("fine-tuning"):
        run_lanes(deal(finetune_jobs(paths, plan)), paths.logs, title="fine-tune", progress=progress)
    say(f"3/4 evaluating the {runs} models on the test split")
    with timer("evaluation"):
        run_lanes(deal(eval_jobs(paths, plan)), paths.logs, title="eval", progress=progress)
    say("4/4 report")
    with timer("report"):
        report = write_report(paths, plan, timer)
    say(f"done in {timer.this_invocation() / 60:.1f} min: {report} and {report.with_suffix('.html')}")
    return report


def _check_plan(out: Path, plan: DemoPlan) -> None:
    """A folder resumes only the plan it was made with: another plan's runs would be mixed in silently."""
    file = out / "plan.json"
    wanted = plan.as_dict()
    if file.is_file():
        saved = json.loads(file.read_text(encoding="utf-8"))
        if saved != wanted:
            changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
            raise UserError(f"{out} holds a demo made with another plan (differs in {', '.join(changed)}); "
                            "use another --out, or the same options as before to resume it")
        return
    write_text(file, json.dumps(wanted, indent=2) + "\n")


class StageTimer:
    """Seconds per stage, added up over every invocation on this folder (``time-spent.json``)."""

    def __init__(self, out: Path):
        self.file = out / "time-spent.json"
        saved = json.loads(self.file.read_text(encoding="utf-8")) if self.file.is_file() else {}
        self.seconds: dict[str, float] = dict(saved.get("seconds", {}))
        self.invocations = int(saved.get("invocations", 0)) + 1
        self.started = time.time()

    def __call__(self, stage: str):
        return _Stage(self, stage)

    def this_invocation(self) -> float:
        return time.time() - self.started

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def save(self) -> None:
        record = {"seconds": {k: round(v, 1) for k, v in self.seconds.items()}, "minutes": round(self.total / 60, 2),
                  "invocations": self.invocations}
        write_text(self.file, json.dumps(record, indent=2) + "\n")


class _Stage:
    def __init__(self, timer: StageTimer, stage: str):
        self.timer, self.stage = timer, stage

    def __enter__(self):
        self.start = time.time()

    def __exit__(self, *exc):
        self.timer.seconds[self.stage] = self.timer.seconds.get(self.stage, 0.0) + time.time() - self.start
        self.timer.save()

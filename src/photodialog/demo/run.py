"""`photodialog demo`: the paper's comparison, end to end, at laptop scale.

Stages (each skipped when its output is already there, so a rerun resumes):

1. world: a synthetic photo-sharing world (``data synth``) and its probe (``data probe``);
2. training, two lanes side by side: the end-to-end model | the pipeline's text then image part;
3. evaluation of both on the test split over seeds (``eval``), plus the most-frequent-reply baseline;
4. the report: ``report.md`` and ``report.html`` with Table 2, share moment, probe scores, loss
   curves and example dialogues with the gold and generated photos side by side.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from photodialog.baselines.presets import baseline_recipes
from photodialog.data.synth import ensure_world
from photodialog.data.synth.probe import Probe, train_probe
from photodialog.demo.baseline import most_frequent_reply_scores
from photodialog.demo.lanes import TrainJob, run_lanes
from photodialog.demo.plan import E2E, IMAGE, PIPELINE, TEXT, DemoPlan
from photodialog.demo.report import write_report
from photodialog.evaluation.evaluate import EvalRequest, evaluate
from photodialog.evaluation.results import load_result

log = logging.getLogger("photodialog.demo")


@dataclass
class DemoPaths:
    out: Path

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
    started = time.time()
    ensure_world(paths.world, dialogues=plan.dialogues, seed=0, image_size=64, progress=progress)
    try:
        Probe.load(paths.world)
    except Exception:  # noqa: BLE001 - no probe yet (or an unreadable one): train it
        say("training the world's photo probe (the objective judge of generated photos)")
        report = train_probe(paths.world, epochs=3 if plan.quick else 10, progress=progress)
        say(f"probe test accuracy: {', '.join(f'{k} {v:.1%}' for k, v in report.accuracy.items())}")
    say(f"world ready in {time.time() - started:.0f} s: {paths.world}")


def training_jobs(paths: DemoPaths, plan: DemoPlan) -> list[list[TrainJob]]:
    common = [f"data.path={paths.world}", "train.max_steps=0", "train.epochs=1000", "train.early_stopping_patience=0",
              "train.eval_every_epochs=1000", "train.save_every_steps=100"]
    if plan.quick:
        common += ["train.warmup_steps=10", "eval.max_samples=32"]
    e2e = TrainJob(E2E, "tiny-e2e", paths.run(E2E), common, plan.train_minutes)
    recipes = baseline_recipes(PIPELINE)  # the shipped tiny-pipeline-text / -image recipes
    text = TrainJob(TEXT, recipes.text, paths.run(TEXT), common, plan.pipeline_part_minutes)
    image = TrainJob(IMAGE, recipes.image, paths.run(IMAGE), [*common, f"model.text_from={paths.run(TEXT).resolve()}"],
                     plan.pipeline_part_minutes)
    return [[e2e], [text, image]]


def evaluate_models(paths: DemoPaths, plan: DemoPlan, progress: bool) -> dict[str, dict]:
    results = {}
    for name, run in ((E2E, paths.run(E2E)), (PIPELINE, paths.run(IMAGE))):
        target = paths.eval_json(name)
        if target.is_file():
            results[name] = load_result(target)
            continue
        say(f"evaluating the {name} model on the test split (seeds {','.join(map(str, plan.seeds))})")
        request = EvalRequest(checkpoint=str(run), data=str(paths.world), split="test", seeds=plan.seeds, out=str(target),
                              max_samples=plan.eval_samples, name=name, progress=progress,
                              generation={"diffusion_steps": plan.diffusion_steps})
        results[name] = evaluate(request).result
    return results


def run_demo(out: str | Path, plan: DemoPlan, *, progress: bool = True) -> Path:
    """Run every stage; returns the path of ``report.md``."""
    paths = DemoPaths(Path(out))
    paths.out.mkdir(parents=True, exist_ok=True)
    (paths.out / "plan.json").write_text(json.dumps(plan.__dict__, indent=2), encoding="utf-8")
    started = time.time()
    say(f"1/4 world ({plan.dialogues} dialogues)")
    make_world(paths, plan, progress)
    say(f"2/4 training, two lanes side by side for about {plan.train_minutes:.1f} min: "
        f"{E2E} | {TEXT} then {IMAGE} ({plan.pipeline_part_minutes:.1f} min each)")
    run_lanes(training_jobs(paths, plan), paths.logs, progress=progress)
    say("3/4 evaluation")
    results = evaluate_models(paths, plan, progress)
    baseline = most_frequent_reply_scores(paths.world, max_samples=plan.eval_samples)
    say("4/4 report")
    spent = add_time_spent(paths.out, (time.time() - started) / 60)
    report = write_report(paths, plan, results, baseline, minutes=spent["minutes"], invocations=spent["invocations"])
    say(f"done in {(time.time() - started) / 60:.1f} min: {report} and {report.with_suffix('.html')}")
    return report


def add_time_spent(out: Path, minutes: float) -> dict:
    """The demo's total time over every invocation on this folder: a rerun that resumes (or only
    rewrites the report) adds its own minutes, so the report's total stays the real cost."""
    record = out / "time-spent.json"
    spent = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {"minutes": 0.0, "invocations": 0}
    spent = {"minutes": spent["minutes"] + minutes, "invocations": spent["invocations"] + 1}
    record.write_text(json.dumps(spent), encoding="utf-8")
    return spent

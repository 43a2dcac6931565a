"""The demo's report: Markdown and HTML from the same content.

Every number comes from the eval result JSON files, the runs' ``metrics.jsonl`` and
``time-spent.json`` written by this demo. The verdict is about the one primary endpoint the plan
fixed before anything trained (``demo/plan.py``), tested with Holm's correction over the arms
(``demo/intervals.py``); every other metric is exploratory: a difference and its 95% interval,
no verdict words.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

from photodialog.demo.arms import ARMS, REFERENCE, run_name
from photodialog.demo.baseline import most_frequent_reply_scores
from photodialog.demo.intervals import UNMEASURED, Difference, PrimaryTest, paired_difference, primary_tests
from photodialog.demo.plan import DemoPlan
from photodialog.evaluation.metrics import SeedResult, build_result, load_result, metric_info
from photodialog.evaluation.runner import load_targets
from photodialog.evaluation.tables import report as tables_report
from photodialog.devices import made_on
from photodialog.files import write_text
from photodialog.models.tiny_generator import BUNDLED_GENERATOR
from photodialog.training.run_files import read_metrics
from photodialog.warm_start import BUNDLED_TEXT

FILES = "report-files"
SHOWN_EXAMPLES = 4
PHOTO_PX = 96
EXPLORATORY_NOTE = ("Every other metric, each arm minus the reference with a 95% interval (Student's t over the "
                    "paired training seeds; none with one seed). No verdict and no multiplicity correction: these "
                    "suggest, the primary endpoint decides.")
# The metrics each difference is computed for, in table order.
COMPARED = ("photo_match_colour", "photo_match_all", "caption_acc_colour", "caption_acc_object", "caption_acc_scene",
            "photo_match_object", "photo_match_scene", "bleu1", "bleu2", "rouge_l", "share_f1", "reply_acc_object",
            "probe_acc_caption_all", "probe_acc_generator_all", "probe_fid", "is", "fid")


# ------------------------------------------------------------ numbers

def load_results(paths, plan: DemoPlan) -> dict[str, dict[int, dict]]:
    """``{arm: {training seed: eval result}}`` for every model the plan trained."""
    return {arm: {seed: load_result(paths.eval_json(run_name(arm, seed))) for seed in plan.seeds} for arm in plan.arms}


def metric(result: dict, key: str) -> float | None:
    entry = result.get("aggregate", {}).get(key, {})
    return entry.get("mean") if entry.get("available", False) else None


def per_seed(results: dict[int, dict], key: str) -> dict[int, float]:
    values = {seed: metric(result, key) for seed, result in results.items()}
    return {seed: value for seed, value in values.items() if value is not None}


def arm_result(arm: str, results: dict[int, dict]) -> dict:
    """One eval result per arm whose "seeds" are the training seeds: each model's scores (one
    sampling seed) become one seed record, so the tables show mean ± std over training seeds."""
    records = []
    for seed, result in sorted(results.items()):
        record = SeedResult.from_dict({**result["per_seed"][0], "seed": seed})
        record.chance.update(result.get("chance", {}))
        records.append(record)
    first = next(iter(results.values()))
    return build_result(model={"name": arm}, data=first["data"], seed_results=records, settings=first.get("settings", {}))


def differences(results: dict[str, dict[int, dict]]) -> dict[str, list[Difference]]:
    """For every arm but the reference: it minus the reference, per compared metric, over paired
    seeds (exploratory: the interval is shown, its verdict is not)."""
    out = {}
    for arm in results:
        if arm == REFERENCE or REFERENCE not in results:
            continue
        rows = []
        for key in COMPARED:
            ref, other = per_seed(results[REFERENCE], key), per_seed(results[arm], key)
            if set(ref) & set(other):
                rows.append(paired_difference(key, other, ref, metric_info(key).higher_is_better))
        out[arm] = rows
    return out


def primary_verdicts(results: dict[str, dict[int, dict]], plan: DemoPlan) -> list[PrimaryTest]:
    """The pre-registered test: every arm minus the reference on the plan's primary metric."""
    key = plan.primary_endpoint["metric"]
    if REFERENCE not in results:
        return []
    others = {arm: per_seed(by_seed, key) for arm, by_seed in results.items() if arm != REFERENCE}
    return primary_tests(per_seed(results[REFERENCE], key), others, higher_is_better=True)


def primary_sentences(tests: list[PrimaryTest], plan: DemoPlan, results: dict[str, dict[int, dict]]) -> list[str]:
    """The verdict, one sentence per contrast, from the Holm-corrected tests only."""
    endpoint = plan.primary_endpoint
    label = "shared photo shows the gold photo's colour"
    sentences = []
    for t in tests:
        ref = _mean(results[REFERENCE], endpoint["metric"])
        arm = _mean(results[t.arm], endpoint["metric"])
        if t.verdict == UNMEASURED:
            sentences.append(f"{t.arm} vs {REFERENCE} on the primary endpoint ({label}): {arm:.1f}% vs {ref:.1f}% on one "
                             "training seed: **not measurable** (a test needs 2 seeds or more).")
            continue
        sentences.append(f"{t.arm} vs {REFERENCE} on the primary endpoint ({label}): {arm:.1f}% vs {ref:.1f}%, "
                         f"difference {t.mean:+.1f} points over {t.seeds} training seeds (p = {t.p:.3f}, Holm level "
                         f"{t.level:.4f}): **{t.verdict}**.")
    return sentences


def _mean(by_seed: dict[int, dict], key: str) -> float:
    values = list(per_seed(by_seed, key).values())
    return sum(values) / len(values) if values else float("nan")


# What a photo-sharing bot must keep from its start (evaluation/runner.py), as the shipped
# start's own record promises it on the default world: (key, claim, threshold %).
COMPETENCE_CHECKS = (
    ("caption_acc_object", "its own caption at every gold photo turn names the gold photo's object", 90.0),
    ("caption_acc_scene", "... its scene", 90.0),
    ("share_f1", "it shares a photo at the turns where the gold response does (share F1)", 85.0),
    ("reply_acc_object", "it sees: its reply to an unannounced photo names the photo's object", 80.0),
)


def learning_checks(results: dict[str, dict[int, dict]], baseline: dict) -> list[tuple[str, bool, str]]:
    """(claim, holds, numbers) per arm, on the means over training seeds."""
    checks = []
    for arm, by_seed in results.items():
        combined = arm_result(arm, by_seed)
        for key, claim, threshold in COMPETENCE_CHECKS:
            value = metric(combined, key)
            if value is not None:
                checks.append((f"{arm}: {claim} (>= {threshold:.0f}%)", value >= threshold, f"{value:.1f}%"))
        obj, colour = metric(combined, "probe_acc_generator_object"), metric(combined, "probe_acc_generator_colour")
        if colour is not None:
            checks.append((f"{arm}: photos drawn from test captions have the caption's colour (probe, >= 60%)", colour >= 60.0, f"{colour:.1f}%"))
        if obj is not None:
            chance = combined.get("chance", {}).get("probe_acc_generator_object", 12.5)
            checks.append((f"{arm}: ... and its object (probe, >= 3x chance = {3 * chance:.1f}%)", obj >= 3 * chance, f"{obj:.1f}%"))
        bleu2, rouge = metric(combined, "bleu2"), metric(combined, "rouge_l")
        beats = bleu2 is not None and rouge is not None and bleu2 > baseline["bleu2"] and rouge > baseline["rouge_l"]
        checks.append((f"{arm}: replies beat the most frequent training reply (BLEU-2 and ROUGE-L)", beats,
                       f"BLEU-2 {bleu2 or 0:.2f} vs {baseline['bleu2']:.2f}, ROUGE-L {rouge or 0:.2f} vs {baseline['rouge_l']:.2f}"))
    return checks


def difference_table(diffs: dict[str, list[Difference]]) -> str:
    """Exploratory: every compared metric's difference and 95% interval, no verdict."""
    arms = list(diffs)
    if not arms:
        return "(only one arm: nothing to compare)"
    header = "| metric | " + " | ".join(f"{arm} - {REFERENCE} [95% interval]" for arm in arms) + " |"
    lines = [header, "| --- |" + " ---: |" * len(arms)]
    keys = [d.metric for d in diffs[arms[0]]]
    for key in keys:
        cells = []
        for arm in arms:
            d = next((d for d in diffs[arm] if d.metric == key), None)
            if d is None:
                cells.append("n/a")
                continue
            interval = f" [{d.low:+.2f}, {d.high:+.2f}]" if d.low is not None else ""
            cells.append(f"{d.mean:+.2f}{interval}")
        direction = "higher" if metric_info(key).higher_is_better else "lower"
        lines.append(f"| {metric_info(key).label} ({direction} is better) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------ loss curves

def plot_losses(paths, plan: DemoPlan, out: Path) -> Path:
    """Mean training loss over seeds per arm (L_t and L_v), against the optimizer step."""
    # slow to import: only the report's plots need it
    import matplotlib

    matplotlib.use("Agg")
    # slow to import: only the report's plots need it
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for arm in plan.arms:
        for axis, key in zip(axes, ("text_loss", "image_loss")):
            curves = [{r["step"]: r[key] for r in read_metrics(paths.run(run_name(arm, s)), "train") if r.get(key) is not None}
                      for s in plan.seeds]
            steps = sorted(set.intersection(*(set(c) for c in curves))) if curves and all(curves) else []
            if steps:
                axis.plot(steps, [sum(c[s] for c in curves) / len(curves) for s in steps], label=arm)
    for axis, title in zip(axes, ("text loss L_t (mean over training seeds)", "image loss L_v (mean over training seeds)")):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("fine-tuning step")
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ------------------------------------------------------------ examples

def examples(paths, plan: DemoPlan, files: Path, count: int = SHOWN_EXAMPLES) -> list[dict]:
    """Test turns where the gold reply shares a photo: context, gold, and every arm's reply and photo (first seed)."""
    seed = plan.seeds[0]
    predictions = {arm: _predictions(paths.eval_json(run_name(arm, seed))) for arm in plan.arms}
    targets = load_targets(paths.world, "test", plan.eval_samples)
    chosen = [i for i, t in enumerate(targets) if t.response.photos and all(i in p for p in predictions.values())][:count]
    shown = []
    for n, index in enumerate(chosen):
        sample = targets[index]
        item = {"context": [(t.speaker, t.text) for t in sample.context[-4:]], "gold": sample.response.text,
                "gold_photo": _copy_photo(Path(sample.response.photos[0].path), files / f"ex{n}-gold.png"), "models": {}}
        for arm, rows in predictions.items():
            row = rows[index]
            photo = (row.get("photos_by_seed") or {}).get(str(plan.eval_seed))
            source = paths.eval_json(run_name(arm, seed)).parent / photo if photo else None
            item["models"][arm] = {"text": row["predicted"],
                                   "photo": _copy_photo(source, files / f"ex{n}-{arm}.png") if source else None}
        shown.append(item)
    return shown


def example_grid(shown: list[dict], arms: list[str], out: Path) -> Path:
    """One picture of the examples: a row per example, columns gold | each arm."""
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image, ImageDraw

    columns, pad, label = ["gold", *arms], 8, 18
    width = len(columns) * (PHOTO_PX + pad) + pad
    grid = Image.new("RGB", (width, label + max(1, len(shown)) * (PHOTO_PX + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(columns):
        draw.text((pad + c * (PHOTO_PX + pad), 4), name, fill="black")
    for r, example in enumerate(shown):
        photos = [example["gold_photo"]] + [example["models"][arm]["photo"] for arm in arms]
        for c, photo in enumerate(photos):
            if photo:
                with Image.open(out.parent.parent / photo) as image:
                    grid.paste(image.convert("RGB"), (pad + c * (PHOTO_PX + pad), label + pad + r * (PHOTO_PX + pad)))
    grid.save(out)
    return out


def _predictions(path: Path) -> dict[int, dict]:
    file = path.parent / f"{path.stem}-predictions.jsonl"
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["index"]: row for row in rows}


def _copy_photo(source: Path, target: Path) -> str:
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image

    with Image.open(source) as image:
        image.convert("RGB").resize((PHOTO_PX, PHOTO_PX), Image.Resampling.NEAREST).save(target)
    return f"{FILES}/{target.name}"


# ------------------------------------------------------------ documents

def write_report(paths, plan: DemoPlan, timer) -> Path:
    results = load_results(paths, plan)
    files = paths.out / FILES
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    diffs = differences(results)
    tests = primary_verdicts(results, plan)
    baseline = most_frequent_reply_scores(paths.world, max_samples=plan.eval_samples)
    arm_results = [arm_result(arm, results[arm]) for arm in plan.arms]
    content = {
        "plan": plan, "paths": paths, "timer": timer,
        "tables": _training_seed_note(tables_report(arm_results, plan.arms, seed_spread=True), plan),
        "differences": difference_table(diffs), "diffs": diffs, "tests": tests, "results": results,
        "verdicts": primary_sentences(tests, plan, results), "machine": machine_record(),
        "checks": learning_checks(results, baseline), "baseline": baseline,
        "start": shipped_record(BUNDLED_TEXT), "generator": shipped_record(BUNDLED_GENERATOR),
        "plot": f"{FILES}/{plot_losses(paths, plan, files / 'losses.png').name}",
        "examples": examples(paths, plan, files),
    }
    content["grid"] = f"{FILES}/{example_grid(content['examples'], plan.arms, files / 'examples.png').name}"
    write_json_summary(paths, plan, content, arm_results)
    markdown = paths.out / "report.md"
    markdown.write_text(_markdown(content), encoding="utf-8")
    markdown.with_suffix(".html").write_text(_html(content), encoding="utf-8")
    return markdown


def shipped_record(folder: Path) -> dict:
    """The ``training.json`` of a part photodialog ships (steps, competence, command), or {} without one."""
    try:
        return json.loads((folder / "training.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _training_seed_note(tables: str, plan: DemoPlan) -> str:
    """The tables' note speaks of evaluation seeds; here each "seed" is a training seed."""
    note = (f"Mean ± sample std over {len(plan.seeds)} training seed(s) per arm: one model per seed, each evaluated "
            f"with sampling seed {plan.eval_seed}.")
    return re.sub(r"Mean ± sample std over .*? not seeds\.", note, tables)


def write_json_summary(paths, plan: DemoPlan, content: dict, arm_results: list[dict]) -> None:
    """``summary.json``: the primary endpoint and its verdicts, the machine, the per-arm means and the
    exploratory differences (without verdicts), for scripts and tests."""
    endpoint = dict(plan.primary_endpoint)
    results = content["results"]
    endpoint["arm_means"] = {arm: {key: round(_mean(by_seed, key), 2) for key in
                                   (endpoint["metric"], endpoint["also_reported"], endpoint["secondary"])}
                             for arm, by_seed in results.items()}
    record = {"plan": plan.as_dict(),
              "primary_endpoint": endpoint,
              "primary_verdicts": {t.arm: t.as_dict() for t in content["tests"]},
              "verdicts": content["verdicts"],
              "machine": content["machine"], "minutes": round(content["timer"].total / 60, 2),
              "arms": {r["model"]["name"]: {k: v for k, v in r["aggregate"].items() if v.get("available")} for r in arm_results},
              "exploratory_differences": {arm: [{k: v for k, v in d.as_dict().items() if k != "verdict"} for d in rows]
                                          for arm, rows in content["diffs"].items()}}
    write_text(paths.out / "summary.json", json.dumps(record, indent=1) + "\n")


def machine_record() -> dict:
    """What the trained bytes depend on besides the command: the CPU kind and torch's version."""
    return {**made_on(), "threads_per_run": 1}


def _intro(c: dict) -> list[str]:
    plan, timer = c["plan"], c["timer"]
    stages = ", ".join(f"{stage} {seconds / 60:.1f}" for stage, seconds in timer.seconds.items())
    runs = len(plan.arms) * len(plan.seeds)
    start, generator, machine = c["start"], c["generator"], c["machine"]
    known = start.get("competence_test", {})
    competence = (f" (on the complete-caption world's test split its own caption names the gold photo's object "
                  f"{known['caption_acc_object']:.0f}%, colour {known['caption_acc_colour']:.0f}%, scene "
                  f"{known['caption_acc_scene']:.0f}%; share F1 {known['share_f1']:.0f}%)") if known else ""
    return [
        f"**The question.** Does training the LLM through the image generator's loss (`L_v`, through STGS and the "
        f"vocabulary bridge) make the bot share the right photo? The world is built so that `L_v` can teach "
        f"something `L_t` cannot: {plan.omit_colour:.0%} of its gold captions leave the colour out (\"a car at night\"), "
        f"while the dialogue states the colour and the photo shows it. Trained on the captions alone (`L_t`), the LLM "
        f"learns to drop the colour; the generator, which knows complete captions, then draws any colour.",
        "",
        f"A synthetic photo-sharing world of {plan.dialogues} dialogues. One pretrained start, shared by every arm, the "
        f"one photodialog ships: the tiny LLM and image perceptron ({start.get('steps', '?')} steps of "
        f"`{start.get('recipe', 'tiny-pretrain-text')}`{competence}) and the tiny image generator "
        f"({generator.get('steps', '?')} steps on the (caption, photo) pairs); `photodialog assets rebuild llm|generator` "
        f"rebuilds them. Then {len(plan.arms)} arms x {_count(len(plan.seeds), 'training seed')} ({plan.seeds}) = {runs} "
        f"fine-tuning runs of {plan.finetune_steps} optimizer steps each, the same data order per seed, gradients "
        f"clipped per part; each model evaluated on the test split "
        f"({'all turns' if not plan.eval_samples else f'first {plan.eval_samples} turns'}, sampling seed {plan.eval_seed}).",
        "",
        f"Time: {timer.total / 60:.1f} min ({stages} min; {_count(timer.invocations, 'invocation')} of the command). "
        f"Machine: {machine.get('cpu')}, torch {machine.get('torch')}, one thread per run.",
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _endpoint_lines(c: dict) -> list[str]:
    endpoint = c["plan"].primary_endpoint
    detectable = endpoint.get("detectable_difference")
    power = (f"With the pilot's spread of the per-seed difference (sd {endpoint['pilot_sd']:.1f} points, "
             f"`docs/demo/pilot.json`), this run can "
             f"detect a difference of {detectable:.1f} points at {endpoint['power']:.0%} power." if detectable is not None
             else "One training seed: no test is possible.")
    return [f"Fixed in `plan.json` before anything trained: **`{endpoint['metric']}`**, {endpoint['meaning']}. "
            f"Reported beside it without a verdict of its own: `{endpoint['also_reported']}` (all three attributes) and "
            f"the mechanism, `{endpoint['secondary']}` (the LLM's own caption names the photo's colour). "
            f"Test: {endpoint['test']}. {power}"]


def _primary_table(c: dict) -> str:
    endpoint, results = c["plan"].primary_endpoint, c["results"]
    keys = (endpoint["metric"], endpoint["also_reported"], endpoint["secondary"])
    lines = ["| arm | " + " | ".join(f"`{k}` (%)" for k in keys) + " | vs " + REFERENCE + " (primary) |",
             "| --- |" + " ---: |" * len(keys) + " --- |"]
    verdict = {t.arm: t for t in c["tests"]}
    for arm, by_seed in results.items():
        cells = []
        for key in keys:
            values = list(per_seed(by_seed, key).values())
            if not values:
                cells.append("n/a")
                continue
            mean = sum(values) / len(values)
            sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
            cells.append(f"{mean:.1f} ± {sd:.1f}")
        t = verdict.get(arm)
        if t is None:
            cells.append("(the reference)")
        else:
            cells.append("n/a (one seed)" if t.verdict == UNMEASURED else f"{t.mean:+.1f}, p = {t.p:.3f}: {t.verdict}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _arms_lines(plan: DemoPlan) -> list[str]:
    return [f"- **{arm}**: {ARMS[arm].meaning} (`{' '.join(ARMS[arm].overrides)}`)" for arm in plan.arms]


def _commands(c: dict) -> list[str]:
    paths, plan = c["paths"], c["plan"]
    seed = plan.seeds[0]

    def shown(path: Path) -> str:  # under --out as typed: works from where the demo was started
        return str((paths.typed or Path(paths.out.name)) / path.relative_to(paths.out))

    # the first arm the experiment tests (the reference only when it is alone)
    tested = [arm for arm in plan.arms if arm != REFERENCE] or plan.arms
    ref = paths.run(run_name(tested[0], seed))
    return [f"photodialog chat --checkpoint {shown(ref)}", f"photodialog serve --checkpoint {shown(ref)}",
            "photodialog eval compare " + " ".join(shown(paths.eval_json(run_name(a, seed))) for a in plan.arms),
            f"# every training and evaluation command the demo ran, with its output: {shown(paths.logs)}/*.log"]


def _quick_note(plan: DemoPlan) -> list[str]:
    if not plan.quick:
        return []
    return ["**This is the `--quick` smoke run.** It runs every stage on a small world with a few steps each, "
            "so its numbers show only that the stages work: the models are barely trained (the learning checks "
            "below may FAIL), "
            + ("one training seed gives no interval, so no verdict is possible. " if len(plan.seeds) < 2 else "")
            + "Run `photodialog demo` without `--quick` for the experiment.", ""]


def _markdown(c: dict) -> str:
    plan = c["plan"]
    lines = ["# photodialog demo report", "", *_quick_note(plan), *_intro(c), "", "## Arms", "", *_arms_lines(plan), "",
             "## Primary endpoint", "", *_endpoint_lines(c), "", "## Verdict", ""]
    lines += [f"- {sentence}" for sentence in c["verdicts"]] or ["- (one arm only)"]
    lines += ["", _primary_table(c), "", "Mean ± std over training seeds. Each training seed is one paired "
              "observation (same start, same data order for every arm); see `photodialog/demo/intervals.py`.", "",
              "## Exploratory differences", "", EXPLORATORY_NOTE, "", c["differences"], "", "## Did the models learn?", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {claim}: {numbers}" for claim, ok, numbers in c["checks"]]
    b = c["baseline"]
    lines += ["", f"Most frequent training reply ({b['reply']!r}) on the same {b['targets']} test turns: "
              f"BLEU-1 {b['bleu1']:.2f}, BLEU-2 {b['bleu2']:.2f}, ROUGE-L {b['rouge_l']:.2f}.", "",
              "## Results per arm (mean ± std over training seeds)", "", c["tables"], "",
              "## Loss curves", "", f"![losses]({c['plot']})", "", "## Examples (training seed "
              f"{plan.seeds[0]})", "", f"![photos of the examples: gold and every arm]({c['grid']})", ""]
    for n, ex in enumerate(c["examples"], 1):
        lines += [f"### Example {n}", ""] + [f"> **{s}**: {t}" for s, t in ex["context"]] + [""]
        lines += ["| gold | " + " | ".join(plan.arms) + " |", "| --- |" + " --- |" * len(plan.arms)]
        cells = [f"{ex['gold']}<br>![gold]({ex['gold_photo']})"]
        for arm in plan.arms:
            m = ex["models"][arm]
            cells.append(m["text"] + (f"<br>![{arm}]({m['photo']})" if m["photo"] else "<br>(no photo shared)"))
        lines += ["| " + " | ".join(cells) + " |", ""]
    lines += ["## Commands", "", "```"] + _commands(c) + ["```", ""]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """Markdown's inline marks that the tables use (**bold**, `code`) as HTML, the rest escaped."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![*\w])\*([^*\s][^*]*?)\*(?![*\w])", r"<i>\1</i>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def markdown_html(text: str) -> str:
    """The Markdown the tables and differences are written in (pipe tables, headings, paragraphs)
    as HTML: real tables, so a browser lays them out (a wide one scrolls in its own box)."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            head, *body = rows
            out.append("<div class='table'><table><thead><tr>" + "".join(f"<th>{_inline_html(c)}</th>" for c in head)
                       + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                                                          for row in body) + "</tbody></table></div>")
            rows.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [cell.strip() for cell in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):  # not the separator row
                rows.append(cells)
            continue
        flush()
        heading = re.match(r"(#+)\s+(.*)", stripped)
        if heading:
            level = min(6, len(heading.group(1)) + 2)
            out.append(f"<h{level}>{_inline_html(heading.group(2))}</h{level}>")
        elif stripped:
            out.append(f"<p>{_inline_html(stripped)}</p>")
    flush()
    return "\n".join(out)


def _html(c: dict) -> str:
    esc = html.escape
    plan = c["plan"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>photodialog demo report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
             "pre{background:#f4f4f4;padding:.6em;overflow:auto}.pass{color:#176f2c}.fail{color:#b00020}"
             ".table{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
             "th:first-child,td:first-child{text-align:left}.chat p{margin:.2em 0}.ex{display:flex;gap:1.5em}.ex div{flex:1}img.photo{image-rendering:pixelated;border:1px solid #ccc}"
             "</style></head><body><h1>photodialog demo report</h1>"]
    parts += [f"<p>{_inline_html(line)}</p>" for line in _quick_note(plan) + _intro(c) if line]
    parts.append("<h2>Arms</h2><ul>" + "".join(f"<li><b>{esc(a)}</b>: {esc(ARMS[a].meaning)}</li>" for a in plan.arms) + "</ul>")
    parts.append("<h2>Primary endpoint</h2>" + "".join(f"<p>{_inline_html(line)}</p>" for line in _endpoint_lines(c)))
    parts.append("<h2>Verdict</h2><ul>" + "".join(f"<li>{_inline_html(s)}</li>" for s in c["verdicts"]) + "</ul>")
    parts.append(markdown_html(_primary_table(c)))
    parts.append(f"<h2>Exploratory differences</h2><p>{_inline_html(EXPLORATORY_NOTE)}</p>{markdown_html(c['differences'])}"
                 "<h2>Did the models learn?</h2><ul>")
    for claim, ok, numbers in c["checks"]:
        parts.append(f"<li class='{'pass' if ok else 'fail'}'>{'PASS' if ok else 'FAIL'}: {esc(claim)}: {esc(numbers)}</li>")
    parts += ["</ul>", f"<h2>Results per arm</h2>{markdown_html(c['tables'])}",
              f"<h2>Loss curves</h2><img src='{c['plot']}' width='900'>", f"<h2>Examples</h2><img src='{c['grid']}'>"]
    for n, ex in enumerate(c["examples"], 1):
        chat = "".join(f"<p><b>{esc(s)}</b>: {esc(t)}</p>" for s, t in ex["context"])
        cols = [f"<div><h4>gold</h4><p>{esc(ex['gold'])}</p><img class='photo' src='{ex['gold_photo']}'></div>"]
        for arm in plan.arms:
            m = ex["models"][arm]
            img = f"<img class='photo' src='{m['photo']}'>" if m["photo"] else "<p>(no photo shared)</p>"
            cols.append(f"<div><h4>{esc(arm)}</h4><p>{esc(m['text'])}</p>{img}</div>")
        parts.append(f"<h3>Example {n}</h3><div class='chat'>{chat}</div><div class='ex'>{''.join(cols)}</div>")
    parts.append("<h2>Commands</h2><pre>" + esc("\n".join(_commands(c))) + "</pre></body></html>")
    return "\n".join(parts)

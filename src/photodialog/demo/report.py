"""The demo's report: Markdown and HTML from the same content, with a loss plot and examples.

Every number comes from the eval result JSON files and the runs' ``metrics.jsonl`` written by
this demo; the verdict sentences only compare them.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from photodialog.demo.lanes import trained_steps
from photodialog.demo.plan import E2E, IMAGE, PIPELINE, TEXT, DemoPlan
from photodialog.evaluation.results import metric_info
from photodialog.evaluation.runner import load_targets
from photodialog.evaluation.tables import report as tables_report
from photodialog.training.run_files import read_metrics

FILES = "report-files"
SHOWN_EXAMPLES = 4
PHOTO_PX = 96


# ------------------------------------------------------------ numbers

def metric(result: dict, key: str) -> float | None:
    entry = result.get("aggregate", {}).get(key, {})
    return entry.get("mean") if entry.get("available", True) else None


def learning_checks(results: dict[str, dict], baseline: dict) -> list[tuple[str, bool, str]]:
    """(claim, holds, numbers) for the demo's learning targets, per model.

    The object check's chance level is the one the evaluation stored with the result
    (``result["chance"]``, from the probe's classes), so the world need not be read again.
    """
    checks = []
    for name, result in results.items():
        colour, obj = metric(result, "probe_acc_generator_colour"), metric(result, "probe_acc_generator_object")
        if colour is not None:
            checks.append((f"{name}: photos drawn from test captions have the caption's colour (probe, >= 60%)",
                           colour >= 60.0, f"{colour:.1f}%"))
        if obj is not None:
            target = 3 * result["chance"]["probe_acc_generator_object"]
            checks.append((f"{name}: ... and its object (probe, >= 3x chance = {target:.1f}%)", obj >= target, f"{obj:.1f}%"))
        bleu2, rouge = metric(result, "bleu2"), metric(result, "rouge_l")
        beats = bleu2 is not None and bleu2 > baseline["bleu2"] and rouge > baseline["rouge_l"]
        checks.append((f"{name}: replies beat the most frequent reply (BLEU-2 and ROUGE-L)", beats,
                       f"BLEU-2 {bleu2:.2f} vs {baseline['bleu2']:.2f}, ROUGE-L {rouge:.2f} vs {baseline['rouge_l']:.2f}"))
    return checks


def verdict(results: dict[str, dict]) -> str:
    """Which model wins on how many of the comparable metrics, said plainly."""
    e2e, pipe = results[E2E], results[PIPELINE]
    wins, losses, ties, rows = 0, 0, 0, []
    for key in ("bleu1", "bleu2", "rouge_l", "is", "fid", "share_f1", "probe_acc_gold_all", "probe_acc_generator_all", "probe_fid"):
        a, b = metric(e2e, key), metric(pipe, key)
        if a is None or b is None:
            continue
        higher = metric_info(key).higher_is_better
        better = (a > b) if higher else (a < b)
        if abs(a - b) < 1e-9:
            ties += 1
        elif better:
            wins += 1
        else:
            losses += 1
        rows.append(f"{metric_info(key).label} {a:.2f} vs {b:.2f}")
    if wins > losses:
        head = f"The end-to-end model beats the pipeline on {wins} of {wins + losses + ties} metrics"
    elif wins < losses:
        head = f"The end-to-end model does NOT beat the pipeline here: it is better on {wins} and worse on {losses} of {wins + losses + ties} metrics"
    else:
        head = f"Neither model wins: {wins} metrics each way, {ties} tied"
    return head + " (end-to-end vs pipeline: " + "; ".join(rows) + ")."


# ------------------------------------------------------------ loss curves

def plot_losses(paths, out: Path) -> Path:
    # slow to import: only the report's plots need it
    import matplotlib

    matplotlib.use("Agg")
    # slow to import: only the report's plots need it
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    runs = {E2E: paths.run(E2E), "pipeline text part": paths.run(TEXT), "pipeline image part": paths.run(IMAGE)}
    for name, run in runs.items():
        rows = read_metrics(run, "train")
        steps = [r["step"] for r in rows]
        if any(r.get("text_loss") for r in rows):
            axes[0].plot(steps, [r["text_loss"] for r in rows], label=name)
        if any(r.get("image_loss") for r in rows):
            axes[1].plot(steps, [r["image_loss"] for r in rows], label=name)
    for axis, title in zip(axes, ("text loss L_t", "image loss L_v")):
        axis.set_title(title)
        axis.set_xlabel("optimizer step")
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ------------------------------------------------------------ examples

def examples(paths, files: Path, count: int = SHOWN_EXAMPLES) -> list[dict]:
    """Test turns where the gold reply shares a photo: context, gold and both models' replies and photos."""
    predictions = {name: _predictions(paths.eval_json(name)) for name in (E2E, PIPELINE)}
    targets = load_targets(paths.world, "test")
    chosen = [i for i, t in enumerate(targets) if t.response.photos and all(i in p for p in predictions.values())][:count]
    shown = []
    for n, index in enumerate(chosen):
        sample = targets[index]
        item = {"context": [(t.speaker, t.text) for t in sample.context[-4:]], "gold": sample.response.text,
                "gold_photo": _copy_photo(Path(sample.response.photos[0].path), files / f"ex{n}-gold.png"), "models": {}}
        for name, rows in predictions.items():
            row = rows[index]
            photo = (row.get("photos_by_seed") or {}).get("0")
            source = paths.eval_json(name).parent / photo if photo else None
            item["models"][name] = {"text": row["predicted"], "photo": _copy_photo(source, files / f"ex{n}-{name}.png") if source else None}
        shown.append(item)
    return shown


def example_grid(shown: list[dict], out: Path) -> Path:
    """One picture of the examples: a row per example, columns gold | end-to-end | pipeline."""
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image, ImageDraw

    columns, pad, label = ("gold", E2E, PIPELINE), 8, 18
    width = len(columns) * (PHOTO_PX + pad) + pad
    grid = Image.new("RGB", (width, label + len(shown) * (PHOTO_PX + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(columns):
        draw.text((pad + c * (PHOTO_PX + pad), 4), name, fill="black")
    for r, example in enumerate(shown):
        photos = [example["gold_photo"]] + [example["models"][name]["photo"] for name in columns[1:]]
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

def write_report(paths, plan: DemoPlan, results: dict[str, dict], baseline: dict, minutes: float, invocations: int = 1) -> Path:
    files = paths.out / FILES
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    plot = plot_losses(paths, files / "losses.png")
    content = {
        "plan": plan, "minutes": minutes, "total": _total_time(minutes, invocations),
        "tables": tables_report([results[E2E], results[PIPELINE]], [E2E, PIPELINE], seed_spread=True),
        "verdict": verdict(results), "checks": learning_checks(results, baseline), "baseline": baseline,
        "steps": {name: trained_steps(paths.run(name)) for name in (E2E, TEXT, IMAGE)},
        "plot": f"{FILES}/{plot.name}", "examples": examples(paths, files), "paths": paths,
    }
    content["grid"] = f"{FILES}/{example_grid(content['examples'], files / 'examples.png').name}"
    markdown = paths.out / "report.md"
    markdown.write_text(_markdown(content), encoding="utf-8")
    markdown.with_suffix(".html").write_text(_html(content), encoding="utf-8")
    return markdown


def _total_time(minutes: float, invocations: int) -> str:
    text = f"{minutes:.1f} min"
    return text if invocations == 1 else f"{text} over {invocations} runs of the command (each resumes the last)"


def _commands(paths) -> list[str]:
    run = paths.run(E2E)
    return [f"photodialog chat --checkpoint {run}", f"photodialog serve --checkpoint {run}",
            f"photodialog chat --checkpoint {paths.run(IMAGE)}   # the pipeline",
            f"photodialog eval compare {paths.eval_json(E2E)} {paths.eval_json(PIPELINE)}"]


def _markdown(c: dict) -> str:
    plan, paths = c["plan"], c["paths"]
    lines = [
        "# photodialog demo report", "",
        f"A synthetic photo-sharing world of {plan.dialogues} dialogues; the tiny end-to-end model and the tiny pipeline "
        f"(same components) each trained for {plan.train_minutes:.1f} minutes of one CPU thread "
        f"(end-to-end: {c['steps'][E2E]} steps; pipeline: {c['steps'][TEXT]} text + "
        f"{c['steps'][IMAGE]} image steps), evaluated on the test split over seeds {plan.seeds}. "
        f"Total time {c['total']}.", "",
        "## Verdict", "", c["verdict"], "",
        "## Did the tiny models learn?", "",
    ]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {claim}: {numbers}" for claim, ok, numbers in c["checks"]]
    b = c["baseline"]
    lines += ["", f"Most frequent training reply ({b['reply']!r}) on the same {b['targets']} test turns: "
              f"BLEU-1 {b['bleu1']:.2f}, BLEU-2 {b['bleu2']:.2f}, ROUGE-L {b['rouge_l']:.2f}.", "",
              "## Results", "", c["tables"], "", "## Loss curves", "", f"![losses]({c['plot']})", "", "## Examples", "",
              f"![photos of the examples: gold, end-to-end, pipeline]({c['grid']})", ""]
    for n, ex in enumerate(c["examples"], 1):
        lines += [f"### Example {n}", ""] + [f"> **{s}**: {t}" for s, t in ex["context"]] + [""]
        lines += ["| gold | end-to-end | pipeline |", "| --- | --- | --- |"]
        cells = [f"{ex['gold']}<br>![gold]({ex['gold_photo']})"]
        for name in (E2E, PIPELINE):
            m = ex["models"][name]
            cells.append(m["text"] + (f"<br>![{name}]({m['photo']})" if m["photo"] else "<br>(no photo shared)"))
        lines += ["| " + " | ".join(cells) + " |", ""]
    lines += ["## Next", "", "Chat with the models this demo trained:", "", "```"] + _commands(paths) + ["```", ""]
    return "\n".join(lines)


def _html(c: dict) -> str:
    esc = html.escape
    plan, paths = c["plan"], c["paths"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>photodialog demo report</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.4}"
             "pre{background:#f4f4f4;padding:.6em;overflow:auto}.pass{color:#176f2c}.fail{color:#b00020}"
             ".chat p{margin:.2em 0}.ex{display:flex;gap:1.5em}.ex div{flex:1}img.photo{image-rendering:pixelated;border:1px solid #ccc}"
             "</style></head><body><h1>photodialog demo report</h1>",
             f"<p>{plan.dialogues} dialogues; {plan.train_minutes:.1f} training minutes per model; steps: "
             f"end-to-end {c['steps'][E2E]}, pipeline {c['steps'][TEXT]} + {c['steps'][IMAGE]}; "
             f"seeds {esc(str(plan.seeds))}; total time {esc(c['total'])}.</p>",
             f"<h2>Verdict</h2><p>{esc(c['verdict'])}</p><h2>Did the tiny models learn?</h2><ul>"]
    for claim, ok, numbers in c["checks"]:
        parts.append(f"<li class='{'pass' if ok else 'fail'}'>{'PASS' if ok else 'FAIL'}: {esc(claim)}: {esc(numbers)}</li>")
    parts += ["</ul>", f"<h2>Results</h2><pre>{esc(c['tables'])}</pre>", f"<h2>Loss curves</h2><img src='{c['plot']}' width='900'>",
              "<h2>Examples</h2>"]
    for n, ex in enumerate(c["examples"], 1):
        chat = "".join(f"<p><b>{esc(s)}</b>: {esc(t)}</p>" for s, t in ex["context"])
        cols = [f"<div><h4>gold</h4><p>{esc(ex['gold'])}</p><img class='photo' src='{ex['gold_photo']}'></div>"]
        for name in (E2E, PIPELINE):
            m = ex["models"][name]
            img = f"<img class='photo' src='{m['photo']}'>" if m["photo"] else "<p>(no photo shared)</p>"
            cols.append(f"<div><h4>{name}</h4><p>{esc(m['text'])}</p>{img}</div>")
        parts.append(f"<h3>Example {n}</h3><div class='chat'>{chat}</div><div class='ex'>{''.join(cols)}</div>")
    parts.append("<h2>Next</h2><pre>" + esc("\n".join(_commands(paths))) + "</pre></body></html>")
    return "\n".join(parts)

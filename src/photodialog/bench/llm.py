"""`photodialog bench llm`: the shipped tiny LLM's learning curve and what it costs to rebuild.

Scores every checkpoint of a pretraining run of ``configs/tiny-pretrain-text.yaml`` (the run folder
that ``photodialog assets rebuild llm --out DIR`` keeps beside ``DIR`` as ``DIR.run``; its weight
average when kept) on a split of the world it trained on, with the measures of
``evaluation/runner.py`` (percent): the own caption at every gold photo turn names the gold
photo's object, colour, scene, all three; share-moment F1; the reply to an unannounced photo names
its object, and the same with the photo blanked. Adds the rebuild's record (``DIR/training.json``:
CPU seconds of the training on one thread, the CPU kind, the SHA-256) when it is there, and the
shipped start's own scores (``assets/tiny-llm``) on the same split.
"""

from __future__ import annotations

import json
from pathlib import Path

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.errors import UserError
from photodialog.evaluation.runner import load_targets, text_competence
from photodialog.models.generation_settings import settings_from_config
from photodialog.system import DialogueSystem, load_system, read_config
from photodialog.warm_start import BUNDLED_TEXT

KEYS = ("caption_acc_object", "caption_acc_colour", "caption_acc_scene", "caption_acc_all", "share_f1",
        "reply_acc_object", "reply_acc_object_blank")


def llm_curve(run: Path, world: Path | None = None, split: str = "test", *, shipped: bool = True,
              progress: bool = True) -> dict:
    """The module docstring's measures per checkpoint of ``run`` (and of the shipped start), as JSON.

    ``world``: the data to score on (default: the run's own ``data.path``). Raises ``UserError``
    when ``run`` has no checkpoint.
    """
    run = Path(run)
    checkpoints = list_checkpoints(run) if run.is_dir() else []
    if not checkpoints:
        raise UserError(f"--run {run} has no checkpoint; give the folder `photodialog assets rebuild llm --out DIR` "
                        "keeps as DIR.run (or any run folder of configs/tiny-pretrain-text.yaml)")
    config = read_config(checkpoints[-1])
    world = Path(world or config.data.path)
    samples = load_targets(world, split, progress=progress)
    settings = settings_from_config(config.eval, {"seed": 0})
    curve = []
    for checkpoint in checkpoints:
        system = load_system(checkpoint, data_path=str(world))
        scores = text_competence(system, samples, settings, progress=progress)
        curve.append({"step": read_state(checkpoint).step, **{k: round(scores[k], 2) for k in KEYS if k in scores}})
    result = {"run": run.name, "recipe": "tiny-pretrain-text", "world": world.name, "split": split, "turns": len(samples),
              "curve": curve, "rebuild": _record(run.with_name(run.name.removesuffix(".run")) / "training.json")}
    if shipped and (BUNDLED_TEXT / "training.json").is_file():
        scores = text_competence(DialogueSystem.from_pretrained(BUNDLED_TEXT, data_path=str(world)), samples, settings,
                                 progress=progress)
        result["shipped"] = {"record": _record(BUNDLED_TEXT / "training.json"),
                             **{k: round(scores[k], 2) for k in KEYS if k in scores}}
    return result


def _record(file: Path) -> dict:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def summary_lines(result: dict) -> list[str]:
    """The learning curve as an aligned table, then the rebuild's cost and the shipped start's scores."""
    header = ["step", "object", "colour", "scene", "all", "share F1", "sees", "blank"]
    rows = [[str(p["step"]), *(f"{p.get(k, float('nan')):.1f}" for k in KEYS)] for p in result["curve"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{result['run']}: own caption at gold photo turns (%), share F1, sees (reply names an unannounced "
             f"photo's object, and with the photo blanked), {result['split']} split of {result['world']} ({result['turns']} turns)"]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    rebuild = result.get("rebuild") or {}
    if rebuild.get("cpu_seconds_one_thread"):
        lines.append(f"rebuild: {rebuild['cpu_seconds_one_thread'] / 60:.1f} CPU-minutes on one thread ({rebuild.get('cpu', '?')})")
    shipped = result.get("shipped")
    if shipped:
        lines.append("shipped start: " + ", ".join(f"{k} {shipped[k]:.1f}" for k in KEYS if k in shipped))
    return lines

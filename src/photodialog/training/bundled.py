"""Rebuilds the pretrained parts photodialog ships: the default world, a pretraining recipe, the export.

Both rebuilds make the default synthetic world (``photodialog demo``'s: 2,000 dialogues, seed 0),
train a recipe on its training split on one CPU thread, and export the run's weight average (EMA).
On the same torch version and CPU kind the weights are the same bytes as the shipped ones (their
``training.json`` holds the SHA-256). The run folder and the world are kept beside ``DIR``
(``DIR.run``, ``DIR.world``), so an interrupted rebuild resumes where it stopped.

- ``photodialog assets rebuild generator --out DIR`` (``rebuild_generator``):
  ``configs/tiny-pretrain-generator.yaml`` for ``BUNDLED_STEPS`` (a random CLIP text encoder and
  UNet on the latents of the bundled VAE), saved as a Stable Diffusion folder (``assets/tiny-sd``,
  ``model.tiny.diffusion_source=bundled``).
- ``photodialog assets rebuild llm --out DIR`` (``rebuild_llm``): ``configs/tiny-pretrain-text.yaml``
  (the tiny LLM and the image perceptron on the world's dialogues), saved as a ``photodialog
  export`` folder (``assets/tiny-llm``, ``model.init_from: [bundled]``) whose record adds the
  competence measures of ``evaluation/runner.py`` on the test split and the training's CPU
  seconds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from photodialog.checkpoints import list_checkpoints
from photodialog.config import load_config
from photodialog.data.synth import ensure_world
from photodialog.data.synth.world import GENERATOR_VERSION
from photodialog.data.layout import WORLD_FILE
from photodialog.devices import made_on, torch_threads
from photodialog.errors import UserError
from photodialog.evaluation.runner import load_targets, text_competence
from photodialog.export import export_checkpoint
from photodialog.models.generation_settings import settings_from_config
from photodialog.models.tiny_vae import BUNDLED_WORLD
from photodialog.system import EXPORT_PARTS, DialogueSystem
from photodialog.training.trainer import Trainer

RECIPE = "tiny-pretrain-generator"
BUNDLED_STEPS = 8000
# The files whose bytes the rebuild must reproduce: the two trained parts' weights.
HASHED = ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")
TEXT_RECIPE = "tiny-pretrain-text"
# The text side's trained weights: the LLM, the perceptron's BLIP-2 parts, and the projection between them.
CPU_TALLY = "cpu-seconds.json"  # in the rebuild's run folder: the training's CPU seconds so far
TEXT_HASHED = ("llm/model.safetensors", "blip2/model.safetensors", "trainable.safetensors")


def rebuild_generator(out: Path, world: Path | None = None, steps: int = BUNDLED_STEPS, progress: bool = True) -> dict:
    """Train the bundled generator from scratch and save it as a Stable Diffusion folder ``out``.

    ``world``: the default synthetic world if already made (default: made in the run folder
    ``out.run``). Returns the record written to ``out/training.json`` (steps, world, SHA-256 per
    weights file, the command). Raises ``UserError`` if ``out`` exists or ``world`` is another
    world: nothing of the user's is overwritten.
    """
    out, run, world = _prepare(out, world, progress)
    config = load_config(RECIPE, [f"data.path={world}", f"train.max_steps={steps}", "model.tiny.diffusion_source=random"])
    _train(config, run, progress)
    exported = out.with_name(f".{out.name}.export")
    shutil.rmtree(exported, ignore_errors=True)
    export_checkpoint(list_checkpoints(run)[-1], exported, progress=progress)
    shutil.move(str(exported / EXPORT_PARTS["diffusion"]), str(out))
    shutil.rmtree(exported)
    record = {"recipe": RECIPE, "steps": steps, "world": BUNDLED_WORLD, "weights": "EMA",
              "sha256": {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in HASHED},
              **made_on(),  # the same bytes only on the same CPU kind and torch version
              "command": f"photodialog assets rebuild generator --out {out.name}"}
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def rebuild_llm(out: Path, world: Path | None = None, steps: int | None = None, progress: bool = True) -> dict:
    """Pretrain the bundled tiny LLM + perceptron from scratch and save them as an export folder ``out``.

    ``steps``: optimizer steps (default: the recipe's ``train.max_steps``); a shorter rebuild (a smoke
    test) also caps the perceptron's pretraining at ``steps`` steps on ``64 * steps`` photos. The run prints its
    competence at every checkpoint (``train.competence_turns``). Returns the record written to
    ``out/training.json``: recipe, steps, world, SHA-256 per weights file, the CPU kind, the CPU
    seconds of the training on one thread (summed over the invocations that trained it, so an
    interrupted and resumed rebuild counts every part), ``competence`` on the world's test split (%), and the command.
    Raises ``UserError`` if ``out`` exists or ``world`` is another world.
    """
    out, run, world = _prepare(out, world, progress)
    short = []
    if steps:
        tiny = load_config(TEXT_RECIPE).model.tiny
        short = [f"train.max_steps={steps}", f"model.tiny.vision_pretrain_steps={min(steps, tiny.vision_pretrain_steps)}",
                 f"model.tiny.vision_pretrain_photos={min(64 * steps, tiny.vision_pretrain_photos)}"]
    config = load_config(TEXT_RECIPE, [f"data.path={world}", *short])
    cpu = _train(config, run, progress, tally=run / CPU_TALLY)
    exported = out.with_name(f".{out.name}.export")
    shutil.rmtree(exported, ignore_errors=True)
    export_checkpoint(list_checkpoints(run)[-1], exported, progress=progress)
    with torch_threads(1):
        system = DialogueSystem.from_pretrained(exported, data_path=str(world))
        settings = settings_from_config(config.eval, {"seed": 0})
        competence = text_competence(system, load_targets(world, "test", progress=progress), settings, progress=progress)
    record = {"recipe": TEXT_RECIPE, "steps": config.train.max_steps, "world": BUNDLED_WORLD, "weights": "EMA",
              "sha256": {name: hashlib.sha256((exported / name).read_bytes()).hexdigest() for name in TEXT_HASHED},
              **made_on(), "cpu_seconds_one_thread": round(cpu, 1),
              "competence_test": {k: round(v, 2) for k, v in competence.items()},
              "command": f"photodialog assets rebuild llm --out {out.name}"}
    (exported / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    exported.rename(out)
    return record


def _prepare(out: Path, world: Path | None, progress: bool) -> tuple[Path, Path, Path]:
    """(out, its run folder, the default world: made in the run folder unless given and checked)."""
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} exists; give a new folder")
    run = out.with_name(out.name + ".run")
    if world is None:  # beside the run folder: a run folder holds only what train writes
        world = out.with_name(out.name + ".world")
        ensure_world(world, progress=progress, **BUNDLED_WORLD)
    else:
        _check_world(Path(world))
    return out, run, Path(world)


def _train(config, run: Path, progress: bool, tally: Path | None = None) -> float:
    """Train ``config`` into ``run`` (resuming it) on one thread; the CPU seconds spent training it:
    this process's, plus those ``tally`` (a JSON number in the run folder) kept from earlier ones."""
    start = time.process_time()
    with torch_threads(1):  # one thread: the same sums in the same order on every machine
        Trainer(config, run, resume=run.exists(), progress=progress).run()
    spent = time.process_time() - start
    if tally is None:
        return spent
    total = spent + (float(json.loads(tally.read_text(encoding="utf-8"))) if tally.is_file() else 0.0)
    tally.write_text(json.dumps(round(total, 1)) + "\n", encoding="utf-8")
    return total


def _check_world(world: Path) -> None:
    try:
        meta = json.loads((world / WORLD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    # the renderer's version too: another version draws other photos, so other bytes would come out
    wanted = {**BUNDLED_WORLD, "version": GENERATOR_VERSION}
    if meta is None or any(meta.get(key) != value for key, value in wanted.items()):
        raise UserError(f"--world {world} is not the default synthetic world {wanted} (its {WORLD_FILE} says "
                        f"{ {k: (meta or {}).get(k) for k in wanted} }); leave --world out to make it")

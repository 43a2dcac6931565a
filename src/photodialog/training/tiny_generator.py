"""Rebuilds the bundled tiny generator: the default world, its pretraining recipe, the export.

``python -m photodialog.training.tiny_generator --out DIR`` makes the default synthetic world
(``photodialog demo``'s: 2,000 dialogues, seed 0), trains ``configs/tiny-pretrain-generator.yaml``
on its training split for ``BUNDLED_STEPS`` optimizer steps on one CPU thread (a random CLIP text
encoder and UNet on the latents of the bundled VAE), and writes the run's weight average (EMA)
as a Stable Diffusion folder: the ``diffusion/`` part of ``photodialog export``. On the same
torch version and CPU kind its weights are the same bytes as the shipped
``photodialog/assets/tiny-sd`` (``training.json`` holds their SHA-256). The run folder is kept
beside ``DIR`` (``DIR.run``, with the world), so an interrupted rebuild resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from photodialog.checkpoints import list_checkpoints
from photodialog.config import load_config
from photodialog.data.synth import ensure_world
from photodialog.data.synth.world import GENERATOR_VERSION
from photodialog.data.layout import WORLD_FILE
from photodialog.devices import made_on, torch_threads
from photodialog.errors import UserError
from photodialog.export import EXPORT_PARTS, export_checkpoint
from photodialog.models.tiny_generator import BUNDLED_GENERATOR
from photodialog.models.tiny_vae import BUNDLED_WORLD
from photodialog.training.trainer import Trainer

RECIPE = "tiny-pretrain-generator"
BUNDLED_STEPS = 8000
# The files whose bytes the rebuild must reproduce: the two trained parts' weights.
HASHED = ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")


def rebuild_bundled(out: Path, world: Path | None = None, steps: int = BUNDLED_STEPS, progress: bool = True) -> dict:
    """Train the bundled generator from scratch and save it as a Stable Diffusion folder ``out``.

    ``world``: the default synthetic world if already made (default: made in the run folder
    ``out.run``). Returns the record written to ``out/training.json`` (steps, world, SHA-256 per
    weights file, the command). Raises ``UserError`` if ``out`` exists or ``world`` is another
    world: nothing of the user's is overwritten.
    """
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} exists; give a new folder")
    run = out.with_name(out.name + ".run")
    if world is None:
        world = run / "world"
        ensure_world(world, progress=progress, **BUNDLED_WORLD)
    else:
        _check_world(Path(world))
    config = load_config(RECIPE, [f"data.path={world}", f"train.max_steps={steps}", "model.tiny.diffusion_source=random"])
    with torch_threads(1):  # one thread: the same sums in the same order on every machine
        Trainer(config, run, resume=run.exists(), progress=progress).run()
    exported = out.with_name(f".{out.name}.export")
    shutil.rmtree(exported, ignore_errors=True)
    export_checkpoint(list_checkpoints(run)[-1], exported, progress=progress)
    shutil.move(str(exported / EXPORT_PARTS["diffusion"]), str(out))
    shutil.rmtree(exported)
    record = {"recipe": RECIPE, "steps": steps, "world": BUNDLED_WORLD, "weights": "EMA",
              "sha256": {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in HASHED},
              **made_on(),  # the same bytes only on the same CPU kind and torch version
              "command": f"python -m photodialog.training.tiny_generator --out {out.name}"}
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


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


def main(argv: list[str] | None = None) -> int:
    """``python -m photodialog.training.tiny_generator --out DIR``: rebuild the bundled generator."""
    parser = argparse.ArgumentParser(prog="python -m photodialog.training.tiny_generator",
                                     description="Rebuild the pretrained tiny Stable Diffusion folder that photodialog ships "
                                                 "(model.tiny.diffusion_source=bundled): the demo's world, then "
                                                 f"configs/{RECIPE}.yaml for {BUNDLED_STEPS} steps on one CPU thread, then "
                                                 "the export of its weight average: about 35 minutes on an idle machine. Resumes if interrupted.")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the Stable Diffusion folder to (must not exist)")
    parser.add_argument("--world", type=Path, help="the default synthetic world, if already made (default: made in OUT.run/world)")
    parser.add_argument("--steps", type=int, default=BUNDLED_STEPS, help=f"optimizer steps (default {BUNDLED_STEPS}, the shipped one's)")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; give a new folder (the shipped one is {BUNDLED_GENERATOR})")
    if args.steps < 1:
        parser.error(f"--steps must be at least 1 (got {args.steps})")
    try:
        record = rebuild_bundled(args.out, args.world, args.steps)
    except UserError as err:
        parser.error(str(err))
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

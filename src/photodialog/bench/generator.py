"""`photodialog bench generator`: how fast the tiny image generator learns to draw the world's photos.

For each setting (the chosen one, ``configs/tiny-pretrain-generator.yaml``, and the one it
replaced: the pixel-space 16 px UNet of the earlier demo), train it on a synthetic world as
`photodialog train` does, keep a checkpoint every ``--eval-every`` steps, then draw a photo for
every gold test caption from each checkpoint and let the world's probe read it: object, colour,
scene, all three, and all three on the held-out (object, colour, scene) triples that never occur
in training. Also: training seconds at each checkpoint (the VAE's training, when the setting has
one, counted as seconds before step 0), and milliseconds per drawn photo with the demo's sampler
settings, alone and in a batch of 16. Everything runs on the threads given (default one).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.config import load_config
from photodialog.data.photos import load_photo
from photodialog.data.synth.probe import Probe
from photodialog.data.synth.world import load_world
from photodialog.models.image_generator import image_to_tensor, tensor_to_image
from photodialog.system import load_system, read_config
from photodialog.training.run_files import read_metrics
from photodialog.training.trainer import Trainer

SETTINGS = {
    "chosen": ("tiny-pretrain-generator", []),
    # The generator of the earlier demo (configs/tiny-pipeline-image.yaml as it was): pixel space at 16 px,
    # batch 16 with 4 noise draws per photo.
    "previous": ("tiny-pretrain-generator", ["model.tiny.latent=false", "model.tiny.image_size=16", "model.tiny.unet_attention=[]",
                                             "model.tiny.unet_channels=[32, 64, 64]", "train.batch_size=16",
                                             "train.micro_batch_size=16", "model.image_loss_repeats=4", "train.ema_decay=0.99"]),
}


@dataclass
class GeneratorBench:
    world: Path
    work: Path
    steps: dict[str, int]
    eval_every: int
    diffusion_steps: int = 20
    guidance_scale: float | None = None
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    overrides: list[str] = field(default_factory=list)
    """Recipe overrides of the chosen setting (KEY=VALUE)."""
    progress: bool = True


def run_generator_bench(bench: GeneratorBench) -> dict:
    """Train and score every setting; returns the JSON-ready result (see the module docstring)."""

    world, probe = load_world(bench.world), Probe.load(bench.world)
    test = world.photos("test")
    captions = [p.triple.caption for p in test]
    held_out = [i for i, p in enumerate(test) if p.held_out]
    results = {}
    for name in bench.settings:
        recipe, overrides = SETTINGS[name]
        overrides = [*overrides, *bench.overrides] if name == "chosen" else overrides
        run_dir = bench.work / name
        seconds = _train(recipe, overrides, bench, name, run_dir)
        last = list_checkpoints(run_dir)[-1]
        generator = _generator(last)  # loaded once for the timing and the VAE's ceiling
        results[name] = {"recipe": recipe, "overrides": overrides, "curve": _curve(run_dir, seconds, captions, held_out, probe, bench),
                         "ms_per_photo": _photo_time(generator, _guidance(last, bench), captions, bench),
                         "vae_reconstruction": _vae_ceiling(generator, [p.path for p in test], captions, probe)}
    return {"benchmark": "generator", "world": str(bench.world), "test_photos": len(test), "held_out_photos": len(held_out),
            "settings": results}


def _train(recipe: str, overrides: list[str], bench: GeneratorBench, name: str, run_dir: Path) -> dict:
    """Train one setting (resuming a finished or interrupted run of it); seconds before the loop and per step."""

    steps = bench.steps[name]
    config = load_config(recipe, [*overrides, f"data.path={bench.world}", f"train.max_steps={steps}",
                                  f"train.save_every_steps={bench.eval_every}", f"train.keep_last={steps // bench.eval_every + 1}"])
    record = run_dir.parent / f"{name}-seconds.json"
    if record.is_file():
        return json.loads(record.read_text(encoding="utf-8"))
    started = time.perf_counter()
    trainer = Trainer(config, run_dir, resume=run_dir.exists(), progress=bench.progress)
    trainer.run()
    total = time.perf_counter() - started

    rows = read_metrics(run_dir, "train")
    loop = rows[-1]["seconds"] if rows else 0.0
    seconds = {"total": total, "before_first_step": max(0.0, total - loop), "per_step": {r["step"]: r["seconds"] for r in rows}}
    record.write_text(json.dumps(seconds), encoding="utf-8")
    return seconds


def _curve(run_dir: Path, seconds: dict, captions: list[str], held_out: list[int], probe, bench: GeneratorBench) -> list[dict]:

    curve = []
    for checkpoint in list_checkpoints(run_dir):
        step = read_state(checkpoint).step
        generator = _generator(checkpoint)
        photos = generator.generate(captions, steps=bench.diffusion_steps, guidance_scale=_guidance(checkpoint, bench), seed=0)
        scores = probe.score(photos, captions)
        held = probe.score([photos[i] for i in held_out], [captions[i] for i in held_out]) if held_out else {}
        at = seconds["per_step"].get(step, seconds["per_step"].get(str(step)))
        curve.append({"step": step, "train_seconds": None if at is None else round(seconds["before_first_step"] + at, 1),
                      **{k: round(100 * scores[k], 2) for k in ("object", "colour", "scene", "all")},
                      "held_out_object": round(100 * held.get("object", float("nan")), 2),
                      "held_out_all": round(100 * held.get("all", float("nan")), 2)})
    return curve


def _generator(checkpoint: Path):

    return load_system(checkpoint, device="cpu").model.generator


def _guidance(checkpoint: Path, bench: GeneratorBench) -> float:
    if bench.guidance_scale is not None:
        return bench.guidance_scale

    return read_config(checkpoint).eval.guidance_scale


def _vae_ceiling(generator, files: list[Path], captions: list[str], probe) -> dict | None:
    """The probe's accuracy on the test photos after the VAE's encode and decode: what no generator
    drawing through this VAE can exceed (None without a VAE)."""


    if generator.vae is None:
        return None
    pixels = torch.stack([image_to_tensor(load_photo(f), generator.image_size) for f in files])
    with torch.no_grad():
        decoded = generator.vae.decode(generator.vae.encode(pixels).latent_dist.mean).sample.clamp(-1, 1)
    scores = probe.score([tensor_to_image(x) for x in decoded], captions)
    return {"mse": round(float(torch.nn.functional.mse_loss(decoded, pixels)), 5),
            **{k: round(100 * scores[k], 2) for k in ("object", "colour", "scene", "all")}}


def _photo_time(generator, guidance: float, captions: list[str], bench: GeneratorBench) -> dict:
    """Milliseconds per photo: one caption alone, and 16 in one batch (median of 3 after a warmup)."""
    out = {"diffusion_steps": bench.diffusion_steps, "guidance_scale": guidance}
    for batch in (1, 16):
        times = []
        for repeat in range(4):
            started = time.perf_counter()
            generator.generate(captions[:batch], steps=bench.diffusion_steps, guidance_scale=guidance, seed=repeat)
            times.append((time.perf_counter() - started) * 1000 / batch)
        out[f"batch_{batch}"] = round(sorted(times[1:])[1], 2)  # the first is warmup
    return out


def summary_lines(result: dict) -> list[str]:
    lines = [f"generator benchmark on {result['world']} ({result['test_photos']} gold test captions, "
             f"{result['held_out_photos']} of held-out triples); probe accuracy %:"]
    for name, setting in result["settings"].items():
        lines.append(f"  {name}: {setting['ms_per_photo']['batch_1']:.1f} ms/photo alone, "
                     f"{setting['ms_per_photo']['batch_16']:.1f} in a batch of 16")
        if setting.get("vae_reconstruction"):
            v = setting["vae_reconstruction"]
            lines.append(f"    VAE reconstructions of the test photos (the ceiling): object {v['object']:.1f}, all {v['all']:.1f}")
        for row in setting["curve"]:
            lines.append(f"    step {row['step']:>5} ({row['train_seconds']} s): object {row['object']:.1f}, colour {row['colour']:.1f}, "
                         f"scene {row['scene']:.1f}, all {row['all']:.1f}; held-out object {row['held_out_object']:.1f}, "
                         f"all {row['held_out_all']:.1f}")
    return lines

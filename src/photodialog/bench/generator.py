"""`photodialog bench generator`: how fast the tiny image generator learns to draw the world's photos.

For each setting (the chosen one, ``configs/tiny-pretrain-generator.yaml`` for the bundled
generator's steps, and the one it replaced: the earlier demo's 1,200 steps with cross-attention
at every UNet level), train it on a synthetic world as `photodialog train` does, keep a
checkpoint every ``--eval-every`` steps, then draw a photo for every gold test caption from each
checkpoint and let the world's probe read it: object, colour, scene, all three, and all three on
the held-out (object, colour, scene) triples that never occur in training. Also: training seconds
at each checkpoint (the VAE's training, when the setting has one, counted as seconds before step
0), and milliseconds per drawn photo with the demo's sampler settings (the recipe's ``eval``
section), alone and in a batch of 16. Then the same scores and times for the generator
photodialog ships (``model.tiny.diffusion_source=bundled``), and whether the chosen setting's
last checkpoint exported is that file, byte for byte. Everything runs on the threads given
(default one).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from photodialog.checkpoints import list_checkpoints, read_state
from photodialog.config import load_config
from photodialog.data.photos import load_photo
from photodialog.data.synth.probe import Probe
from photodialog.data.synth.world import load_world
from photodialog.devices import made_elsewhere
from photodialog.export import export_checkpoint
from photodialog.models.image_generator import ImageGenerator, image_to_tensor, tensor_to_image
from photodialog.models.pretrained import load_diffusion
from photodialog.models.tiny_generator import BUNDLED_GENERATOR
from photodialog.system import EXPORT_PARTS, load_system
from photodialog.training.run_files import read_metrics
from photodialog.training.trainer import Trainer

DEMO_RECIPE = "tiny-finetune"  # the demo draws every photo with this recipe's eval settings
GRID_PHOTOS = 40

SETTINGS = {
    "chosen": ("tiny-pretrain-generator", []),
    # The generator of the earlier demo: cross-attention at all three UNet levels, no pooled caption in
    # the ResNet blocks, 1,200 steps, drawn with DDIM in 20 steps at guidance 3.
    "previous": ("tiny-pretrain-generator", ["model.tiny.unet_attention=[true, true, true]", "model.tiny.unet_addition_embed_type=''",
                                             "train.max_steps=1200", "eval.sampler=ddim", "eval.diffusion_steps=20",
                                             "eval.guidance_scale=3.0"]),
}


@dataclass
class GeneratorBench:
    world: Path
    work: Path
    steps: dict[str, int]
    eval_every: int
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    overrides: list[str] = field(default_factory=list)
    """Recipe overrides of the chosen setting (KEY=VALUE)."""
    bundled: bool = True
    """Also score the shipped generator and compare the chosen setting's last checkpoint with it."""
    grid: Path | None = None
    """Where to save a PNG grid of the shipped generator's photos from the first 40 test captions."""
    sweep: list["Sampling"] = field(default_factory=list)
    """Sampler settings to score the shipped generator with on the dev split (how the demo's were chosen)."""
    progress: bool = True


@dataclass
class Sampling:
    """How photos are drawn: the recipe's ``eval`` settings (the demo's)."""

    sampler: str
    diffusion_steps: int
    guidance_scale: float

    @classmethod
    def of(cls, config) -> "Sampling":
        return cls(config.eval.sampler, config.eval.diffusion_steps, config.eval.guidance_scale)

    def draw(self, generator, captions: list[str], seed: int = 0) -> list:
        return generator.generate(captions, steps=self.diffusion_steps, guidance_scale=self.guidance_scale, seed=seed,
                                  sampler=self.sampler)


def run_generator_bench(bench: GeneratorBench) -> dict:
    """Train and score every setting, then the shipped generator; returns the JSON-ready result
    (see the module docstring)."""

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
        # drawn as the setting's recipe says (the chosen one's eval section is the demo's; a test keeps them equal)
        sampling = Sampling.of(load_config(recipe, overrides))
        generator = _generator(list_checkpoints(run_dir)[-1])  # loaded once for the timing and the VAE's ceiling
        results[name] = {"recipe": recipe, "overrides": overrides, "sampling": asdict(sampling),
                         "curve": _curve(run_dir, seconds, sampling, captions, held_out, probe),
                         "ms_per_photo": _photo_time(generator, sampling, captions),
                         "vae_reconstruction": _vae_ceiling(generator, [p.path for p in test], captions, probe)}
    out = {"benchmark": "generator", "world": str(bench.world), "test_photos": len(test), "held_out_photos": len(held_out),
           "settings": results}
    if bench.bundled:
        chosen = bench.work / "chosen" if "chosen" in bench.settings else None
        out["bundled"] = _bundled(captions, held_out, probe, chosen, bench)
    return out


def parse_sweep(text: str) -> list[Sampling]:
    """``SAMPLER:STEPS:GUIDANCE,...`` -> settings; ``ValueError`` naming the entry that is not one."""
    settings = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        try:
            sampler, steps, guidance = entry.split(":")
            settings.append(Sampling(sampler, int(steps), float(guidance)))
        except ValueError:
            raise ValueError(f"--sweep: '{entry}' is not SAMPLER:STEPS:GUIDANCE (e.g. dpm:4:3)") from None
    return settings


DEFAULT_SWEEP = ",".join([f"dpm:{n}:{g}" for n in (3, 4, 5, 6) for g in (2, 3, 4, 5)] + ["ddim:20:3"])


def _scores(photos: list, captions: list[str], held_out: list[int], probe) -> dict:
    scores = probe.score(photos, captions)
    held = probe.score([photos[i] for i in held_out], [captions[i] for i in held_out]) if held_out else {}
    return {**{k: round(100 * scores[k], 2) for k in ("object", "colour", "scene", "all")},
            "held_out_object": round(100 * held.get("object", float("nan")), 2),
            "held_out_all": round(100 * held.get("all", float("nan")), 2)}


def _bundled(captions: list[str], held_out: list[int], probe, chosen_run: Path | None, bench: GeneratorBench) -> dict:
    """The shipped generator drawn with the demo's settings (``tiny-finetune``'s eval section), and
    whether the chosen run's last checkpoint, exported, holds the same bytes."""
    sampling = Sampling.of(load_config(DEMO_RECIPE))
    generator = ImageGenerator(*_diffusion_parts(BUNDLED_GENERATOR)).ready_to_draw()  # as every inference load
    record = json.loads((BUNDLED_GENERATOR / "training.json").read_text(encoding="utf-8"))
    photos = sampling.draw(generator, captions)
    result = {"folder": str(BUNDLED_GENERATOR), "steps": record["steps"], "sampling": asdict(sampling),
              **_scores(photos, captions, held_out, probe), "ms_per_photo": _photo_time(generator, sampling, captions)}
    if bench.grid is not None:
        result["grid"] = {"file": str(save_grid(photos[:GRID_PHOTOS], bench.grid)), "captions": captions[:GRID_PHOTOS]}
    if bench.sweep:
        dev = [p.triple.caption for p in load_world(bench.world).photos("dev")]
        result["dev_sweep"] = [{**asdict(s), **_scores(s.draw(generator, dev), dev, [], probe)} for s in bench.sweep]
    if chosen_run is not None:
        result["chosen_run_is_bundled"] = _same_weights(chosen_run, record, bench)
        # bit for bit only on the CPU kind and torch version the file was made with
        result["why_not_rebuildable_here"] = made_elsewhere(record)
    return result


def save_grid(photos: list, out: Path, columns: int = 10, scale: int = 4) -> Path:
    """Photos (PIL, one size) in rows of ``columns``, each enlarged ``scale`` times without smoothing; returns ``out``."""
    # only the grid needs Pillow's Image; keeps the module light
    from PIL import Image

    side = photos[0].width * scale
    columns = min(columns, len(photos))
    rows = (len(photos) + columns - 1) // columns
    grid = Image.new("RGB", (columns * side, rows * side), "white")
    for i, photo in enumerate(photos):
        grid.paste(photo.resize((side, side), Image.Resampling.NEAREST), ((i % columns) * side, (i // columns) * side))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out


def _diffusion_parts(folder: Path):
    text_encoder, unet, vae, scheduler, tokenizer = load_diffusion(str(folder))
    return text_encoder.eval(), unet.eval(), scheduler, tokenizer, vae.eval() if vae is not None else None


def _same_weights(run_dir: Path, record: dict, bench: GeneratorBench) -> bool:
    """Export the run's last checkpoint and compare the trained weights' SHA-256 with the shipped ones."""
    exported = bench.work / "chosen-export"
    if not exported.is_dir():
        export_checkpoint(list_checkpoints(run_dir)[-1], exported, progress=bench.progress)
    diffusion = exported / EXPORT_PARTS["diffusion"]
    return all(hashlib.sha256((diffusion / name).read_bytes()).hexdigest() == digest for name, digest in record["sha256"].items())


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


def _curve(run_dir: Path, seconds: dict, sampling: Sampling, captions: list[str], held_out: list[int], probe) -> list[dict]:

    curve = []
    for checkpoint in list_checkpoints(run_dir):
        step = read_state(checkpoint).step
        photos = sampling.draw(_generator(checkpoint), captions)
        at = seconds["per_step"].get(step, seconds["per_step"].get(str(step)))
        curve.append({"step": step, "train_seconds": None if at is None else round(seconds["before_first_step"] + at, 1),
                      **_scores(photos, captions, held_out, probe)})
    return curve


def _generator(checkpoint: Path):

    return load_system(checkpoint, device="cpu").model.generator


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


def _photo_time(generator, sampling: Sampling, captions: list[str]) -> dict:
    """Milliseconds per photo: one caption alone, and 16 in one batch (median of 7 after a warmup)."""
    out = asdict(sampling)
    for batch in (1, 16):
        times = []
        for repeat in range(8):
            started = time.perf_counter()
            sampling.draw(generator, captions[:batch], seed=repeat)
            times.append((time.perf_counter() - started) * 1000 / batch)
        out[f"batch_{batch}"] = round(sorted(times[1:])[3], 2)  # the first is warmup
    return out


def summary_lines(result: dict) -> list[str]:
    lines = [f"generator benchmark on {result['world']} ({result['test_photos']} gold test captions, "
             f"{result['held_out_photos']} of held-out triples); probe accuracy %:"]
    for name, setting in result["settings"].items():
        lines.append(f"  {name}: {_times(setting['ms_per_photo'])}")
        if setting.get("vae_reconstruction"):
            v = setting["vae_reconstruction"]
            lines.append(f"    VAE reconstructions of the test photos (the ceiling): object {v['object']:.1f}, all {v['all']:.1f}")
        for row in setting["curve"]:
            lines.append(f"    step {row['step']:>5} ({row['train_seconds']} s): {_accuracy(row)}")
    if "bundled" in result:
        b = result["bundled"]
        same = {True: "; the chosen run's last checkpoint is this file, byte for byte",
                False: "; the chosen run's last checkpoint differs from it" + _cpu_note(b)}.get(b.get("chosen_run_is_bundled"), "")
        lines.append(f"  bundled ({b['steps']} steps, {b['folder']}): {_accuracy(b)}")
        lines.append(f"    {_times(b['ms_per_photo'])}{same}")
        for row in b.get("dev_sweep", []):
            lines.append(f"    dev split, {row['sampler']} {row['diffusion_steps']} steps, guidance {row['guidance_scale']:g}: "
                         f"object {row['object']:.1f}, colour {row['colour']:.1f}, scene {row['scene']:.1f}, all {row['all']:.1f}")
    return lines


def _cpu_note(bundled: dict) -> str:
    reason = bundled.get("why_not_rebuildable_here")
    return f" (expected: {reason})" if reason else " (on the CPU kind and torch version it was made with: report it)"


def _accuracy(row: dict) -> str:
    return (f"object {row['object']:.1f}, colour {row['colour']:.1f}, scene {row['scene']:.1f}, all {row['all']:.1f}; "
            f"held-out object {row['held_out_object']:.1f}, all {row['held_out_all']:.1f}")


def _times(ms: dict) -> str:
    return (f"{ms['batch_1']:.1f} ms/photo alone, {ms['batch_16']:.1f} in a batch of 16 "
            f"({ms['sampler']}, {ms['diffusion_steps']} steps, guidance {ms['guidance_scale']:g})")

"""Constants and helpers of the evaluation-loop tests (a module with a unique name, importable from tests)."""

from __future__ import annotations

import torch

RUN_OVERRIDES = [
    "max_steps=2", "train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000",
    "train.save_every_steps=1", "model.image_loss_repeats=1", "train.warmup_steps=1",
]
FAST = {"diffusion_steps": 2, "max_new_tokens": 12}
FAST_FLAGS = ["--diffusion-steps", "2", "--max-new-tokens", "12", "--no-progress"]
MAX_SAMPLES = 20  # the first 20 test targets of the tiny world hold 2 photo turns (targets 14 and 19)


def recording_replies(calls: list):
    """The real ``runner.generate_replies``, appending each call's ``GenerationSettings`` to ``calls``.

    Patched over ``evaluate.generate_replies``, it shows how often an evaluation wrote the replies
    and with which seed, which its result alone cannot.
    """
    from photodialog.evaluation.runner import generate_replies

    def record(system, samples, settings, **kwargs):
        calls.append(settings)
        return generate_replies(system, samples, settings, **kwargs)

    return record


def save_untrained_probe(world_dir) -> None:
    """A probe with random, fixed weights in ``world_dir/probe`` (its predictions are arbitrary)."""
    from photodialog.data.synth import load_world
    from photodialog.data.synth.probe import Probe
    from photodialog.data.synth.probe_model import ProbeConfig, build_network

    world = load_world(world_dir)
    config = ProbeConfig(objects=list(world.objects), colours=list(world.colours), scenes=list(world.scenes))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        Probe(build_network(config), config).save(world_dir / "probe")

"""The tiny image generator learns to draw the world's objects (slow: a few minutes on one CPU thread).

A test of learning, not of the final number (``photodialog bench generator`` measures that): a
short pretraining of ``configs/tiny-pretrain-generator.yaml`` on a small world must lift the
probe's object accuracy on photos drawn from gold test captions well above chance.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_object_accuracy_rises_well_above_chance(tmp_path):
    import torch

    from photodialog.bench.generator import Sampling
    from photodialog.config import load_config
    from photodialog.data.synth import write_world
    from photodialog.data.synth.probe import Probe, train_probe
    from photodialog.data.synth.world import load_world
    from photodialog.system import load_system
    from photodialog.training.trainer import Trainer

    world = tmp_path / "world"
    write_world(world, dialogues=600, seed=0, image_size=64, progress=False)
    train_probe(world, epochs=10, threads=1, progress=False)
    # a new generator (diffusion_source random, as the recipe says) on the bundled VAE's latents
    config = load_config("tiny-pretrain-generator", [f"data.path={world}", "train.max_steps=1200"])
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(config, tmp_path / "run", progress=False).run()
        test = load_world(world).photos("test")
        captions = [p.triple.caption for p in test]
        generator = load_system(tmp_path / "run").model.generator
        photos = Sampling.of(config).draw(generator, captions)  # the demo's sampler settings
    finally:
        torch.set_num_threads(before)
    scores = Probe.load(world).score(photos, captions)
    assert scores["colour"] > 0.6  # chance: 1/6
    assert scores["object"] > 3 * (1 / 8)  # chance: 1/8

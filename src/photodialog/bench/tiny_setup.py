"""A tiny world, tiny systems and one fixed batch: the shared setup of the step and chat benchmarks.

The world is the synthetic photo-sharing world at 32 px (or ``--data``); the systems are the
``tiny-e2e`` recipe's, built with ``build_system`` exactly as ``photodialog train`` builds them
(tokenizers trained on the world's text, parts saved under ``run_dir/base``). Two systems built
from the same base folder and seed have identical weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from photodialog.config import load_config
from photodialog.data.samples import build_samples
from photodialog.data.synth.writer import ensure_world
from photodialog.errors import UserError
from photodialog.system import build_system
from photodialog.training.data import EncodedSamples, epoch_order, load_split, tokenizer_texts
from photodialog.training.speed import adamw

RECIPE = "tiny-e2e"


@dataclass
class TinySetup:
    world: Path
    run_dir: Path
    texts: list[str]
    samples: list  # photodialog.data.schema.Sample of the train split


def make_world(folder: Path, dialogues: int = 60, image_size: int = 32) -> Path:
    """A small synthetic world (well under a second at 60 dialogues)."""
    world = folder / "world"
    ensure_world(world, dialogues=dialogues, seed=0, image_size=image_size, progress=False)
    return world


def prepare(run_dir: Path, data: str | None, *, dialogues: int = 60) -> TinySetup:
    """Load (or synthesise) the training dialogues that the tiny systems learn their tokenizers from."""
    world = Path(data) if data else make_world(run_dir, dialogues)
    if not world.exists():
        raise UserError(f"--data '{world}' does not exist; make a world with `photodialog data synth --out {world}`")
    config = load_config(RECIPE, [f"data.path={world}"])
    dialogues_, _ = load_split(config.data, config.data.train_split)
    samples = build_samples(dialogues_)
    if not samples:
        raise UserError(f"no training samples in '{world}'")
    return TinySetup(world, run_dir, tokenizer_texts(dialogues_), samples)


def tiny_config(setup: TinySetup, overrides: list[str] = ()):
    return load_config(RECIPE, [f"data.path={setup.world}", *overrides])


def build(setup: TinySetup, overrides: list[str] = ()):
    """A fresh tiny system (the same weights for the same base folder and overrides)."""
    return build_system(tiny_config(setup, overrides), setup.run_dir, setup.texts)


def fixed_batch(system, setup: TinySetup, size: int, seed: int = 0):
    """The first micro-batch of epoch 0 as the trainer would draw it (photo-sharing samples oversampled)."""
    dataset = EncodedSamples(setup.samples, system.formatter)
    if len(dataset) < size:
        raise UserError(f"the world has only {len(dataset)} training samples; use --batch-size {len(dataset)} or fewer")
    order = epoch_order(dataset, 0, seed, size, system.config.data.photo_sample_weight)
    return system.make_batch([dataset[i] for i in order.local_batch(0, 0, 1)])


def batch_maker(system, setup: TinySetup, size: int, seed: int = 0):
    """A callable returning the consecutive micro-batches of epoch 0 as the trainer draws them
    (collate and photo tensors included), round and round; for profiling the data path."""
    dataset = EncodedSamples(setup.samples, system.formatter)
    if len(dataset) < size:
        raise UserError(f"the world has only {len(dataset)} training samples; use --batch-size {len(dataset)} or fewer")
    order = epoch_order(dataset, 0, seed, size, system.config.data.photo_sample_weight)
    position = 0

    def make():
        nonlocal position
        batch = system.make_batch([dataset[i] for i in order.local_batch(position % len(order), 0, 1)])
        position += 1
        return batch.to(system.model.device)

    return make


def optimizer_for(model: torch.nn.Module, config, device="cpu", *, fused: bool = True) -> torch.optim.Optimizer:
    """AdamW over what trains, with the run's learning rate and weight decay, fused on CUDA (as the
    trainer); ``fused=False``: torch's default implementation (the code before fusing, for comparisons)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return adamw(params, lr=config.train.lr, weight_decay=config.train.weight_decay, device=device if fused else "cpu")

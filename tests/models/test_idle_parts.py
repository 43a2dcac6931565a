"""A part that a micro-batch gives nothing to do can still take part in the loss (``idle_parts``):
its trained weights then get a gradient of exactly zero, and nothing else changes. FSDP and
DeepSpeed need this when one process's micro-batch runs a part and another's does not (the
multi-process runs are in tests/training/test_sharded_engines.py)."""

from __future__ import annotations

import pytest
import torch

from photodialog.config import load_config


@pytest.fixture(scope="module")
def system_and_dataset(tiny_world, tmp_path_factory):
    from photodialog.data.samples import build_samples
    from photodialog.system import build_system
    from photodialog.training.data import EncodedSamples, load_split, tokenizer_texts

    config = load_config("tiny-e2e", [f"data.path={tiny_world}", "model.caption_dropout=0"])
    dialogues, _ = load_split(config.data, "train")
    system = build_system(config, tmp_path_factory.mktemp("run"), tokenizer_texts(dialogues))
    return system, EncodedSamples(build_samples(dialogues), system.formatter)


def batch_where(system, dataset, *, context: bool, captions: bool, size: int = 2):
    chosen = [dataset[i] for i in range(len(dataset))
              if bool(dataset[i].context_photos) == context and bool(dataset[i].captions) == captions][:size]
    assert len(chosen) == size, "the tiny world has no such samples"
    return system.make_batch(chosen)


def without_target_photos(batch):
    """The same batch as if every target photo were unreadable: captions, but no L_v."""
    for caption in batch.captions:
        caption.target = -1
    batch.target_pixels, batch.target_keys = None, []
    return batch


def grads_of(model, batch, idle_parts=frozenset()):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    out = model(batch, tau=0.5, idle_parts=idle_parts)
    out.loss.backward()
    return out, {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


CASES = {
    "no context photo": (dict(context=False, captions=True), "perceptron", lambda b: b),
    "no caption at all": (dict(context=True, captions=False), "generator", lambda b: b),
    "captions without a target photo": (dict(context=False, captions=True), "generator", without_target_photos),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_idle_part_gets_exactly_zero_gradients_and_changes_nothing_else(system_and_dataset, case):
    system, dataset = system_and_dataset
    where, part, change = CASES[case]
    model = system.model.train()
    batch = change(batch_where(system, dataset, **where))
    assert part not in model.parts_used(batch)
    prefix = f"{part}."

    plain, before = grads_of(model, batch)
    idle, after = grads_of(model, batch, frozenset({part}))

    assert torch.equal(idle.loss, plain.loss)
    part_names = [name for name in after if name.startswith(prefix)]
    assert part_names
    for name in part_names:
        assert before[name] is None, f"{name} had a gradient without the idle part"
        assert after[name] is not None and not after[name].any(), f"{name}: no gradient, or not zero"
    for name in after:
        if not name.startswith(prefix):
            assert (before[name] is None) == (after[name] is None), name
            assert before[name] is None or torch.equal(before[name], after[name]), f"{name} changed"


def test_parts_used_names_the_parts_a_batch_runs(system_and_dataset):
    system, dataset = system_and_dataset
    model = system.model
    photos = batch_where(system, dataset, context=True, captions=False, size=1)
    captions = batch_where(system, dataset, context=False, captions=True, size=1)
    assert model.parts_used(photos) == {"perceptron"}
    assert model.parts_used(captions) == {"generator"}
    assert model.parts_used(captions, alpha=0) == set()
    assert model.parts_used(without_target_photos(captions)) == set()

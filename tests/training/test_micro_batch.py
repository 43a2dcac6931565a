"""train.micro_batch_size=auto: accepted by the config, the CPU rule, the GPU fitting rule, a CPU run that records its choice."""

from __future__ import annotations

import pytest

from photodialog.cli.main import main
from photodialog.config import load_config
from photodialog.errors import ConfigError
from photodialog.training.micro_batch import choose_on_cpu, fit

GIB = 2**30


def test_config_takes_auto_or_a_whole_number():
    assert load_config("tiny-e2e", ["train.micro_batch_size=auto"]).train.micro_batch_size == "auto"
    assert load_config("tiny-e2e", ["train.micro_batch_size=8"]).train.micro_batch_size == 8
    with pytest.raises(ConfigError, match="micro_batch_size"):
        load_config("tiny-e2e", ["train.micro_batch_size=big"])
    with pytest.raises(ConfigError, match="micro_batch_size"):
        load_config("tiny-e2e", ["train.micro_batch_size=0"])


@pytest.mark.parametrize("per_process, expected", [(32, 16), (24, 12), (7, 7), (16, 16), (34, 2)])
def test_cpu_rule_is_the_largest_divisor_up_to_16(per_process, expected):
    assert choose_on_cpu(per_process).size == expected


def test_gpu_rule_fits_the_largest_divisor_in_free_memory_less_margins():
    # budget = 10 GiB x 0.9 - 1 GiB - 1 GiB optimizer state = 7 GiB; 1 GiB fixed + 1 GiB per sample -> at most 6 -> 4 of 8's divisors
    assert fit(8, free=10 * GIB, fixed=GIB, per_sample=GIB, optimizer_state=GIB) == 4
    assert fit(8, free=100 * GIB, fixed=GIB, per_sample=GIB, optimizer_state=GIB) == 8
    assert fit(8, free=GIB, fixed=GIB, per_sample=GIB, optimizer_state=GIB) == 1  # nothing fits: 1, and the OOM says so


def test_auto_on_cpu_trains_and_records_the_chosen_size(tmp_path, quick_args):
    run = tmp_path / "run"
    args = quick_args("max_steps=1", "train.batch_size=8", "train.micro_batch_size=auto")
    assert main(["train", *args, "--output-dir", str(run)]) == 0
    assert load_config(str(run / "config.yaml")).train.micro_batch_size == 8


def test_gpu_probe_measures_two_steps_and_leaves_no_trace(monkeypatch):
    """choose_on_cuda with the CUDA memory counters simulated: a step of m samples peaks at
    3 GiB + 1 GiB x m above the 10 GiB held, and 41 GiB are free."""
    import random

    import torch

    from photodialog.training import micro_batch

    state = {"peak": 0}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 10 * GIB)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: state.update(peak=0))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 10 * GIB + state["peak"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (41 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: None)

    class Sample:
        def __init__(self, n):
            self.input_ids = list(range(n))

    class FakeBatch(list):
        def to(self, device):
            return self

    model = torch.nn.Linear(4, 4)
    dataset = [Sample(n) for n in (5, 50, 7, 40, 9)]
    seen = []

    def run_step(batch):
        seen.append([len(s.input_ids) for s in batch])
        state["peak"] = 3 * GIB + GIB * len(batch)
        model(torch.randn(len(batch), 4)).sum().backward()  # draws from torch's stream, makes gradients
        random.random()

    torch.manual_seed(5)
    random.seed(5)
    expected = torch.rand(1), random.random()
    torch.manual_seed(5)
    random.seed(5)
    choice = micro_batch.choose_on_cuda(model, FakeBatch, dataset, 64, "cuda", run_step)
    assert seen == [[50], [50, 40]]  # the longest samples, 1 then 2 of them
    assert choice.details["fixed_bytes"] == 3 * GIB and choice.details["per_sample_bytes"] == GIB
    assert choice.size == 32  # 3 + m <= 41 x 0.9 - 1 - 160 bytes of AdamW state: m <= 32.9; 32 divides 64
    assert all(p.grad is None for p in model.parameters())
    assert (torch.rand(1), random.random()) == expected  # every random stream as before the probe

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

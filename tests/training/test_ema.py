"""The moving average of the trainable weights."""

from __future__ import annotations

import torch

from photodialog.training.ema import WeightAverage


def test_average_is_kept_where_the_weights_are():
    # The trainer builds the average after Accelerate has placed the model; "meta" stands in for the GPU.
    parameters = {"w": torch.nn.Parameter(torch.zeros(2, device="meta"))}
    average = WeightAverage(parameters, decay=0.9)
    average.update()
    assert average.average["w"].device.type == "meta"
    assert average.average["w"].dtype == torch.float32


def test_average_moves_towards_the_weights():
    parameters = {"w": torch.nn.Parameter(torch.zeros(2))}
    average = WeightAverage(parameters, decay=0.9)
    with torch.no_grad():
        parameters["w"].fill_(1.0)
    average.update()
    assert torch.all((average.average["w"] > 0) & (average.average["w"] < 1))

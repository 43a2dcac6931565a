"""The weight average follows its parameters to whatever device Accelerate moves them to."""

from __future__ import annotations

import torch

from photodialog.training.ema import WeightAverage


def test_average_follows_its_parameters_to_another_device():
    start = torch.tensor([1.0, 2.0])
    parameters = {"w": torch.nn.Parameter(start.clone())}
    average = WeightAverage(parameters, decay=0.9)
    # The trainer builds the average before Accelerate moves the model; "meta" stands in for the GPU.
    parameters["w"] = torch.nn.Parameter(parameters["w"].detach().to("meta"))
    average.update()
    assert average.average["w"].device.type == "meta"
    assert average.average["w"].shape == start.shape


def test_average_moves_towards_the_weights():
    parameters = {"w": torch.nn.Parameter(torch.zeros(2))}
    average = WeightAverage(parameters, decay=0.9)
    with torch.no_grad():
        parameters["w"].fill_(1.0)
    average.update()
    assert torch.all((average.average["w"] > 0) & (average.average["w"] < 1))

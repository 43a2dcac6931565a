"""The allocation timeline counts what ops create, frees, peaks, views and exclusions correctly."""

from __future__ import annotations

import torch

from photodialog.bench.memory import AllocationTimeline, tensor_bytes

MB = 1_000_000


def test_peak_is_the_largest_set_of_live_tensors():
    with AllocationTimeline() as timeline:
        a = torch.ones(MB // 4)  # 1 MB
        b = torch.ones(MB // 2)  # 2 MB, 3 MB live
        del a  # 2 MB live
        c = torch.ones(MB // 4)  # 3 MB live again, never 4
        del b, c
    report = timeline.report()
    assert report.peak_bytes == 3 * MB
    assert report.allocated_bytes == 4 * MB
    assert report.allocations == 3


def test_views_and_inplace_results_of_existing_tensors_are_not_allocations():
    weight = torch.ones(1000, 1000)
    with AllocationTimeline() as timeline:
        weight.t()
        weight[:10]
        weight.add_(1.0)
    assert timeline.report().allocated_bytes == 0


def test_backward_is_tracked_and_excluded_tensors_are_left_out():
    x = torch.randn(500, 500, requires_grad=True)  # 1 MB
    with AllocationTimeline() as timeline:
        y = (x * 2).sum()
        (grad,) = torch.autograd.grad(y, [x])
    everything = timeline.report()
    without_grad = timeline.report(exclude=[grad])
    assert everything.allocated_bytes - without_grad.allocated_bytes == tensor_bytes(grad) == 1_000_000
    assert without_grad.excluded_bytes == 1_000_000
    assert without_grad.peak_bytes < everything.peak_bytes


def test_sparse_tensors_count_their_indices_and_values():
    with AllocationTimeline() as timeline:
        torch.sparse_coo_tensor(torch.zeros(2, 100, dtype=torch.long), torch.ones(100), (10, 10), check_invariants=False)
    assert timeline.report().allocated_bytes >= 2 * 100 * 8 + 100 * 4

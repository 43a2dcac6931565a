"""Timing helpers: repeat counts, medians, early stop, interleaving."""

from __future__ import annotations

from photodialog.bench.timing import Timing, measure, measure_interleaved


def test_timing_summary_is_the_median_of_the_samples():
    timing = Timing.of([0.003, 0.001, 0.002])
    assert timing.median_ms == 2.0 and timing.min_ms == 1.0 and timing.max_ms == 3.0 and timing.repeats == 3


def test_measure_runs_warmup_then_repeats():
    calls = []
    timing = measure(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and timing.repeats == 4


def test_measure_stops_early_when_over_budget_but_runs_once():
    calls = []
    timing = measure(lambda: calls.append(1), repeats=10, warmup=0, max_seconds=0.0)
    assert timing.repeats == 1 and len(calls) == 1


def test_interleaved_runs_alternate():
    order = []
    timings = measure_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=2, warmup=1)
    assert order == ["a", "b"] * 3
    assert timings["a"].repeats == timings["b"].repeats == 2

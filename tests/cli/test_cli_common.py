"""The argparse value types every command shares (cli/common.py): one wording, one rule each."""

from __future__ import annotations

import argparse

import pytest

from photodialog.cli.common import non_negative_int, positive_float, positive_int


@pytest.mark.parametrize("parse, text, value", [
    (positive_int, "3", 3), (non_negative_int, "0", 0), (positive_float, "0.5", 0.5), (positive_float, "2", 2.0),
])
def test_good_values_are_converted(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse, text, complaint", [
    (positive_int, "0", "at least 1"), (positive_int, "-2", "at least 1"), (positive_int, "2.5", "not a whole number"),
    (non_negative_int, "-1", "at least 0"), (non_negative_int, "x", "not a whole number"),
    (positive_float, "0", "above 0"), (positive_float, "nan", "above 0"), (positive_float, "fast", "not a number"),
])
def test_bad_values_are_refused_with_the_reason(parse, text, complaint):
    with pytest.raises(argparse.ArgumentTypeError, match=complaint):
        parse(text)


def test_eval_and_download_use_the_shared_types():
    from photodialog.cli import eval as eval_cli
    from photodialog.cli.data import download

    assert eval_cli.positive_int is download.positive_int is positive_int
    assert eval_cli.non_negative_int is download.non_negative_int is non_negative_int
    assert download.positive_float is positive_float

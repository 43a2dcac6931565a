"""The argparse value types every command shares (cli/common.py): one wording, one rule each."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from photodialog.cli.common import float_between, int_between, non_negative_int, positive_float, positive_int, seed


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
    assert eval_cli.non_negative_int is non_negative_int
    # download's counts and durations have upper bounds now: the shared bounded types
    assert download.int_between is int_between and download.float_between is float_between


@pytest.mark.parametrize("parse, text, complaint", [
    (positive_float, "inf", "finite"), (positive_float, "1e999", "finite"),
    (int_between(10, 200_000), "99999999999999", "from 10 to 200,000"), (int_between(10, 200_000), "9", "from 10"),
    (float_between(0, 3600), "inf", "at most 3600"), (float_between(0, 3600), "nan", "above 0"),
    (float_between(0, 3600), "0", "above 0"), (seed, "-1", "from 0 to 4,294,967,295"),
    (seed, str(2**32), "from 0 to"),
])
def test_sizes_counts_and_durations_have_finite_bounds(parse, text, complaint):
    with pytest.raises(argparse.ArgumentTypeError, match=complaint):
        parse(text)
    assert int_between(1, 5)("5") == 5 and float_between(0, 3600)("3600") == 3600.0 and seed("4294967295") == 2**32 - 1


def test_every_count_flag_states_its_upper_bound_in_help():
    """Every flag whose type is a bounded count says its bounds in --help (no 14-digit typo runs)."""
    from photodialog.cli.main import build_parser

    parser = build_parser()
    missing = []

    def walk(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            elif getattr(action.type, "__name__", "").startswith("whole number from "):
                low, high = action.type.__name__.removeprefix("whole number from ").split(" to ")
                bound = f"{int(high):,}" if int(high) < 2**32 - 1 else "2^32-1"
                if bound not in (action.help or "") and high not in (action.help or ""):
                    missing.append((parser.prog, action.option_strings, bound))

    walk(parser)
    assert not missing


def test_every_command_module_is_in_the_command_tree():
    """cli/main.py's COMMANDS and DATA_COMMANDS name every command module, and only those."""
    import photodialog.cli
    from photodialog.cli.main import COMMANDS, DATA_COMMANDS

    folder = Path(photodialog.cli.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__", "main", "common"}
    assert sorted(modules | {"data"}) == sorted(COMMANDS)
    assert sorted(p.stem for p in (folder / "data").glob("*.py") if p.stem != "__init__") == sorted(DATA_COMMANDS)


@pytest.mark.parametrize(("argv", "built"), [
    (["--help"], []),
    (["eval", "--checkpoint", "run", "--help"], ["eval"]),
    (["data", "stats", "--help"], ["data.stats"]),
    (["data", "--help"], []),
])
def test_a_call_imports_only_the_command_it_names(argv, built):
    code = ("import sys\nfrom photodialog.cli.main import build_parser\n"
            f"build_parser({argv!r})\n"
            "import json\nprint(json.dumps([m.removeprefix('photodialog.cli.') for m in sys.modules if m.startswith('photodialog.cli.')]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = set(json.loads(out.stdout.strip().splitlines()[-1])) - {"main", "common", "data"}
    assert sorted(imported) == built


@pytest.mark.parametrize("argv, usage", [
    (["eval", "--checkpoint", "x", "--bogus"], "usage: photodialog eval "),
    (["data", "stats", "x", "--bogus"], "usage: photodialog data stats "),
    (["--bogus"], "usage: photodialog "),
])
def test_an_unknown_flag_is_refused_by_the_command_it_was_given_to(argv, usage, capsys):
    from photodialog.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(usage) and "unrecognized arguments: --bogus" in err

"""Bad values end in a message and exit 2, never a traceback (exit 1) or a run that fills the memory:
sizes and counts have upper bounds (stated in --help), seeds are 32-bit, durations finite, and an
--out that cannot be written is refused before the work (data synth, data probe, bench)."""

from __future__ import annotations

import time

import pytest

from photodialog.cli.main import main

UNWRITABLE = "/proc/self/cannot/be/made"  # no user, root included, can create a folder in /proc/self


def run(argv, capsys):
    """(exit code, stderr) of a command, whether argparse or the command refused it."""
    try:
        code = main(argv)
    except SystemExit as exited:
        code = exited.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("flags, complaint", [
    (["--dialogues", "99999999999999"], "at most 200,000"),
    (["--dialogues", "3"], "at least 10"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to 4294967295"),
    (["--seed", str(2**32)], "--seed must be"),
    (["--image-size", "100000"], "between 16 and 1024"),
])
def test_data_synth_refuses_bad_values_at_once(flags, complaint, tmp_path, capsys):
    started = time.perf_counter()
    code, err = run(["data", "synth", "--out", str(tmp_path / "w"), "--no-progress", *flags], capsys)
    assert code == 2 and complaint in err
    assert time.perf_counter() - started < 5 and not (tmp_path / "w").exists()


def test_synth_help_states_the_writers_bounds():
    from photodialog.cli.data import synth
    from photodialog.data.synth import writer

    assert (synth.MIN_DIALOGUES, synth.MAX_DIALOGUES) == (writer.MIN_DIALOGUES, writer.MAX_DIALOGUES)
    assert (synth.MIN_IMAGE_SIZE, synth.MAX_IMAGE_SIZE) == (writer.MIN_IMAGE_SIZE, writer.MAX_IMAGE_SIZE)


def test_synth_and_probe_refuse_an_unwritable_out_before_the_work(tiny_world, monkeypatch, capsys):
    import photodialog.data.synth.probe as probe
    import photodialog.data.synth.writer as writer

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before --out was checked")

    monkeypatch.setattr(writer, "write_world", no_work)
    monkeypatch.setattr(probe, "train_probe", no_work)
    code, err = run(["data", "synth", "--out", UNWRITABLE, "--dialogues", "10", "--no-progress"], capsys)
    assert code == 2 and f"cannot write --out in {UNWRITABLE}" in err
    code, err = run(["data", "probe", str(tiny_world), "--out", UNWRITABLE, "--no-progress"], capsys)
    assert code == 2 and f"cannot write --out in {UNWRITABLE}" in err


@pytest.mark.parametrize("bench", [["memory"], ["startup"], ["bridge"], ["step"], ["chat"], ["generator"]])
def test_bench_refuses_an_unwritable_out_before_the_work(bench, monkeypatch, capsys):
    import photodialog.bench.load_memory as load_memory

    monkeypatch.setattr(load_memory, "all_settings", lambda: pytest.fail("the benchmark ran before --out was checked"))
    code, err = run(["bench", *bench, "--out", f"{UNWRITABLE}/result.json"], capsys)
    assert code == 2 and "argument --out: cannot write --out" in err


@pytest.mark.parametrize("flags, complaint", [
    (["--timeout", "inf"], "at most 3600"), (["--timeout", "1e300"], "at most 3600"), (["--backoff", "nan"], "above 0"),
    (["--workers", "100000"], "from 1 to 256"), (["--retries", "1000000"], "from 0 to 20"),
    (["--fallback-seed", "-1"], "from 0 to"),
])
def test_data_download_refuses_unbounded_values(flags, complaint, tmp_path, capsys):
    code, err = run(["data", "download", "photochat", "--out", str(tmp_path / "d"), "--base-url", "http://127.0.0.1:9",
                     *flags], capsys)
    assert code == 2 and complaint in err


@pytest.mark.parametrize("argv, complaint", [
    (["data", "probe", "W", "--epochs", "10000000"], "from 1 to 1,000"),
    (["data", "probe", "W", "--seed", "-1"], "from 0 to"),
    (["data", "check", "W", "--max-messages", "-1"], "from 0 to 100,000"),
    (["demo", "--seeds", "1000000"], "from 1 to 100"),
    (["bench", "bridge", "--captions", "99999999999999"], "--captions may be at most 4,096"),
    (["bench", "step", "--steps", "99999999999999"], "--steps may be at most 1,000,000"),
    (["bench", "chat", "--new-tokens", "99999999999999"], "--new-tokens may be at most 4,096"),
    (["bench", "startup", "--repeats", "99999999999999"], "--repeats may be at most 1,000"),
    (["serve", "--checkpoint", "C", "--concurrency", "100000"], "--concurrency may be at most 64"),
    (["serve", "--checkpoint", "C", "--max-upload-cache-mb", "inf"], "at most 1048576"),
])
def test_other_counts_and_sizes_are_bounded(argv, complaint, tmp_path, capsys):
    pytest.importorskip("gradio") if argv[0] == "serve" else None
    code, err = run([str(tmp_path) if a in ("W", "C") else a for a in argv], capsys)
    assert code == 2 and complaint in err

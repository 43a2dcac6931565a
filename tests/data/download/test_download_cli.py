"""`photodialog data download`: help, exit codes, summary, and a full run with redrawing."""

from __future__ import annotations

import json

import pytest
from download_helpers import EXPECTED_REASONS, photochat_world, serve_dialogcc, dialogcc_dialogue

from photodialog.cli.data.download import byte_size
from photodialog.cli.main import main
from photodialog.data.download import load_manifest

FAST = ["--timeout", "0.3", "--retries", "1", "--backoff", "0.01", "--max-bytes", "100kB", "--workers", "4", "--quiet"]


def test_help_says_what_where_and_under_which_licence(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["data", "download", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for words in ["CC BY 4.0", "CC BY-NC-SA 4.0", "photos/manifest.jsonl", "--fallback-generator",
                  "--retry-failed", "--max-bytes", "passing2961/dialogcc", "multimodalchat/photochat"]:
        assert words in text


def test_all_ok_or_recorded_failures_exit_0_with_a_summary(server, tmp_path, capsys):
    base_url, stems = photochat_world(server)
    code = main(["data", "download", "photochat", "--out", str(tmp_path), "--base-url", base_url, *FAST])
    captured = capsys.readouterr()
    assert code == 0
    assert f"failed {len(EXPECTED_REASONS)}" in captured.out
    for reason in EXPECTED_REASONS.values():
        assert reason in captured.out
    assert f"{len(EXPECTED_REASONS)} photo(s) could not be fetched" in captured.err
    assert len(load_manifest(tmp_path)) == len(stems)


def test_limit_and_splits(server, tmp_path, capsys):
    base = serve_dialogcc(server, {
        name: [dialogcc_dialogue(f"{name}:{i}", name, [[]]) for i in range(5)] for name in ("train", "valid", "test")
    })
    code = main(["data", "download", "dialogcc", "--out", str(tmp_path), "--base-url", base,
                 "--splits", "valid", "--limit", "2", *FAST])
    assert code == 0
    assert [p.name for p in tmp_path.glob("*.json")] == ["valid.json"]
    assert len(json.loads((tmp_path / "valid.json").read_text())) == 2
    assert "2 dialogues (dev 2)" in capsys.readouterr().out


def test_a_smaller_limit_after_a_full_run_says_which_files_it_left(server, tmp_path, capsys):
    base_url, _ = photochat_world(server)
    main(["data", "download", "photochat", "--out", str(tmp_path), "--base-url", base_url, "--no-photos", *FAST])
    capsys.readouterr()
    assert main(["data", "download", "photochat", "--out", str(tmp_path), "--base-url", base_url, "--no-photos",
                 "--limit", "1", *FAST]) == 0
    out = capsys.readouterr().out
    assert "beyond --limit" in out and "train/train_01.json" in out
    assert (tmp_path / "train" / "train_01.json").is_file()  # never deleted


def test_no_photos_fetches_the_dialogue_files_only(server, tmp_path):
    base_url, _ = photochat_world(server)
    argv = ["data", "download", "photochat", "--out", str(tmp_path), "--base-url", base_url, "--no-photos", *FAST]
    assert main(argv) == 0
    assert (tmp_path / "train" / "train_00.json").is_file()
    assert not any(path.startswith("/p/") for path in server._server.hits)


def test_unreachable_dialogue_files_exit_3(server, tmp_path, capsys):
    code = main(["data", "download", "dialogcc", "--out", str(tmp_path), "--base-url", server.url("/nothing"), *FAST])
    assert code == 3
    err = capsys.readouterr().err
    assert "http 404" in err and "train.json" in err and "--base-url" in err


@pytest.mark.parametrize("argv", [
    ["--limit", "0"],
    ["--workers", "zero"],
    ["--max-bytes", "lots"],
    ["--timeout", "-1"],
])
def test_bad_flags_exit_2(tmp_path, argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["data", "download", "photochat", "--out", str(tmp_path), *argv])
    assert exited.value.code == 2


def test_bad_values_found_later_exit_2(tmp_path, capsys):
    assert main(["data", "download", "photochat", "--out", str(tmp_path), "--splits", "train,holdout"]) == 2
    assert "holdout" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["data", "download", "photochat", "--out", str(a_file), "--no-photos"]) == 2


def test_a_fallback_model_path_that_does_not_exist_stops_before_any_fetch(server, tmp_path, capsys):
    base_url, _ = photochat_world(server)
    argv = ["data", "download", "photochat", "--out", str(tmp_path / "out"), "--base-url", base_url, *FAST,
            "--fallback-generator", str(tmp_path / "no-such-model")]
    assert main(argv) == 2
    assert "not a folder" in capsys.readouterr().err and server.total_hits() == 0


def test_byte_sizes():
    assert byte_size("20MB") == 20_000_000
    assert byte_size("512KiB") == 512 * 1024
    assert byte_size("1.5m") == 1_500_000
    assert byte_size("1000") == 1000


def test_fallback_generator_from_the_command_line(server, tmp_path, tiny_sd_model, one_torch_thread, capsys):
    base_url, stems = photochat_world(server)
    code = main(["data", "download", "photochat", "--out", str(tmp_path), "--base-url", base_url, *FAST,
                 "--fallback-generator", tiny_sd_model, "--fallback-steps", "1", "--fallback-device", "cpu"])
    assert code == 0
    manifest = load_manifest(tmp_path)
    assert all(manifest[stems[kind]].status == "generated" for kind in EXPECTED_REASONS)
    assert f"generated {len(EXPECTED_REASONS)}, failed 0" in capsys.readouterr().out


def test_ctrl_c_exits_130_and_keeps_what_was_fetched(server, tmp_path):
    """A real SIGINT to a real `photodialog` process in the middle of the photos."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from download_helpers import GOOD_JPEG, photochat_dialogue, respond, serve_photochat, slow

    records = []
    for index in range(40):
        url = server.add(f"/p/{index}.jpg", slow(0.2, respond(GOOD_JPEG)))  # 40 x 0.2 s over 2 workers: ~4 s in all
        records.append(photochat_dialogue(index, url, f"train/{index}", "Objects in the photo: Cup"))
    base_url = serve_photochat(server, {"train/train_00.json": records})
    process = subprocess.Popen(
        [sys.executable, "-m", "photodialog", "data", "download", "photochat", "--out", str(tmp_path),
         "--base-url", base_url, "--splits", "train", "--workers", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As typed in a terminal: a test run started in the background (`cmd &`, as some CI runners
        # do) passes SIGINT down as ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    # Wait until a few photos were asked for (in whatever order the downloader takes them), with
    # most of them still to come: the signal must land in the middle of the fetching.
    while sum(server.hits(f"/p/{index}.jpg") for index in range(40)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=60)

    assert process.returncode == 130
    assert "interrupted" in out
    manifest = load_manifest(tmp_path)
    assert 0 < len(manifest) < 40
    assert all(entry.status == "ok" for entry in manifest.values())
    photos = [p for p in (tmp_path / "photos" / "train").iterdir()]
    assert len(photos) == len(manifest)  # every kept photo is in the manifest, and no partial file

"""A malformed safetensors file is a message and exit 2, never a traceback: overlapping offsets, a
shape whose byte size overflows, a header entry without data_offsets, in a checkpoint with or without
a manifest (list_checkpoints itself must not crash on the last one), and in an export's part folders.
safetensors' SafetensorError derives from Exception only, so it is caught by name where weights are read.

A malformed header is not what a half-written checkpoint looks like (that is a cut-short or empty
file, skipped for the previous one): the checkpoint is listed either way, and reading it says what
is wrong, so a damaged file is never passed over in silence."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import pytest
from .run_helpers import save_step

from photodialog.checkpoints import checkpoint_problem, list_checkpoints, read_weights, resolve_checkpoint
from photodialog.cli.main import main
from photodialog.errors import UserError

MODES = ["overlap", "huge", "overflow", "nooffsets"]


def damage(path: Path, mode: str) -> None:
    """Rewrite the header of the safetensors file ``path`` (same tensor bytes); its manifest, if any,
    is made to match, as a stranger's folder would carry one."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    name = [k for k in header if k != "__metadata__"][-1]
    entry = header[name]
    if mode == "overlap":  # its bytes overlap the first tensor's
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = [0, end - begin]
    elif mode == "huge":  # a shape far beyond the file
        entry["shape"] = [1 << 40, 1 << 20]
    elif mode == "overflow":  # a byte size beyond 64 bits
        entry["shape"] = [1 << 62, 1 << 62]
    else:
        del entry["data_offsets"]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size:])
    manifest = path.parent / "manifest.json"
    if manifest.is_file():
        files = json.loads(manifest.read_text())["files"]
        files[path.name] = {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        manifest.write_text(json.dumps({"format": 1, "files": files}))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_reading_a_malformed_weights_file_is_a_user_error(tmp_path, mode, manifest):
    save_step(tmp_path, 1)
    newest = save_step(tmp_path, 2)
    if not manifest:
        (newest / "manifest.json").unlink()  # a checkpoint of an older version
    damage(newest / "trainable.safetensors", mode)
    found = list_checkpoints(tmp_path)  # never a KeyError or SafetensorError
    assert [p.name for p in found] == ["step-0000001", "step-0000002"]
    assert checkpoint_problem(newest) is None and resolve_checkpoint(tmp_path) == newest
    with pytest.raises(UserError, match=r"trainable\.safetensors cannot be read .*it is damaged: do this"):
        read_weights(newest / "trainable.safetensors", "do this")


@pytest.fixture(scope="module")
def damaged_runs(tiny_run, tmp_path_factory):
    """Copies of the tiny run, each with its newest checkpoint's ema.safetensors damaged one way."""
    runs = {}
    for mode in ("overlap", "huge", "nooffsets"):
        run = tmp_path_factory.mktemp("damaged") / mode
        shutil.copytree(tiny_run, run)
        newest = sorted((run / "checkpoints").glob("step-*"))[-1]
        if mode == "nooffsets":
            for folder in (run / "checkpoints").glob("step-*"):
                (folder / "manifest.json").unlink()
        damage(newest / "ema.safetensors", mode)
        runs[mode] = run
    return runs


@pytest.mark.parametrize("mode", ["overlap", "huge", "nooffsets"])
def test_chat_on_a_run_with_damaged_weights_exits_2_with_a_message(damaged_runs, mode, capsys):
    code = main(["chat", "--checkpoint", str(damaged_runs[mode]), "--message", "hi", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "ema.safetensors cannot be read" in err and "damaged" in err


def test_an_export_with_a_damaged_part_is_a_message(tiny_run, tmp_path, capsys):
    from photodialog.export import export_checkpoint

    out = export_checkpoint(tiny_run, tmp_path / "export", progress=False).out
    damage(out / "llm" / "model.safetensors", "overlap")
    code = main(["chat", "--checkpoint", str(out), "--message", "hi", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "invalid offset" in err

"""An export is "a folder others can load": its files get the user's umask modes (not safetensors' and
tempfile's 0600), and `export --out .` writes into the current (empty) folder instead of failing."""

from __future__ import annotations

import os
import stat

from photodialog.cli.main import main
from photodialog.warm_start import is_export


def test_export_into_the_current_empty_folder_with_the_umask_modes(tiny_run, tmp_path, monkeypatch, capsys):
    here = tmp_path / "shared-model"
    here.mkdir()
    monkeypatch.chdir(here)
    old = os.umask(0o027)  # group may read, others may not: neither 0600 nor 0644
    try:
        code = main(["export", "--checkpoint", str(tiny_run), "--out", ".", "--no-progress"])
    finally:
        os.umask(old)
    assert code == 0, capsys.readouterr().err
    assert is_export(here) and os.path.samefile(os.getcwd(), here)  # the same folder, still the current one
    assert not list(tmp_path.glob(".*.part"))
    files = [p for p in here.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files) and (here / "config.yaml").is_file()
    wrong = {str(p.relative_to(here)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != 0o640}
    assert not wrong

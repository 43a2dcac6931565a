"""Files are written with the user's umask, atomic writes and safetensors included: a temporary file
renamed into place (``tempfile``: 0600) and safetensors' ``save_file`` (0600) must not leave results,
run files and weights readable by their owner only (the modes ``open`` would give: 0666 less the umask)."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import pytest
import torch
from .run_helpers import save_step

from photodialog.config import load_config, save_config
from photodialog.files import save_tensors, umask_mode, use_umask_modes, write_text


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_text_and_tensor_files_get_the_umask_mode(tmp_path, mask):
    with umask(mask):
        assert umask_mode() == 0o666 & ~mask
        write_text(tmp_path / "result.json", "{}")
        save_tensors({"w": torch.ones(2)}, tmp_path / "w.safetensors")
        save_config(load_config("tiny-e2e"), tmp_path / "config.yaml")
        open(tmp_path / "plain.txt", "w").close()  # what a plain open gives: the reference
    expected = mode(tmp_path / "plain.txt")
    assert expected == 0o666 & ~mask
    for name in ("result.json", "w.safetensors", "config.yaml"):
        assert mode(tmp_path / name) == expected, name


def test_a_checkpoint_is_readable_by_the_group_and_others_under_umask_022(tmp_path):
    with umask(0o022):
        folder = save_step(tmp_path, 1)
    modes = {p.name: mode(p) for p in folder.iterdir() if p.is_file()}
    assert modes and all(m == 0o644 for m in modes.values()), modes


def test_a_folder_a_library_wrote_gets_the_umask_modes(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.safetensors", "sub/b.json"):
        (tmp_path / name).write_text("x")
        os.chmod(tmp_path / name, 0o600)  # as save_pretrained leaves them
    with umask(0o022):
        use_umask_modes(tmp_path)
    assert mode(tmp_path / "a.safetensors") == mode(tmp_path / "sub/b.json") == 0o644

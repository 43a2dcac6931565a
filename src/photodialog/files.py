"""File helpers every part shares: atomic writes, and the modes of the files written.

A state or result file is written to a temporary file in the same folder and renamed over the
old one (``os.replace`` is atomic on POSIX and Windows), so a crash leaves the old file or the
new one, never half of one.

**Modes.** Temporary files are created owner-only (``tempfile`` uses 0600, and so does
safetensors' ``save_file``, which writes through one), whatever the user's umask. Every file
photodialog writes gets the mode a plain ``open`` would give it (0666 less the umask, e.g. 0644):
``write_text`` and ``save_tensors`` set it; ``use_umask_modes`` sets it on a whole folder written
by a library (``save_pretrained``), so that an export, a run or an eval result can be read by
the other users the umask lets in.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def umask_mode() -> int:
    """The mode ``open`` gives a new file: 0o666 less the process's umask (e.g. 0o644)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux shows the umask without changing it; elsewhere it can only be read by setting it
    # (and setting it back), which another thread creating a file in between would see.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def use_umask_mode(path: str | os.PathLike) -> None:
    """Give the file ``path`` the mode a plain ``open`` would have given it (``umask_mode``)."""
    os.chmod(path, umask_mode())


def use_umask_modes(folder: str | os.PathLike) -> None:
    """``use_umask_mode`` for every file under ``folder`` (a folder a library wrote, e.g. ``save_pretrained``)."""
    mode = umask_mode()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def save_tensors(tensors: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Save named tensors as safetensors at ``path`` with the umask's mode (see the module docstring).

    ``tensors``: name -> ``torch.Tensor`` (moved to the CPU and made contiguous here). Raises
    ``OSError`` (a full disk) or safetensors' ``SafetensorError`` as ``save_file`` does.
    """
    # imports torch: only writing weights needs it
    from safetensors.torch import save_file

    save_file({name: t.detach().cpu().contiguous() for name, t in tensors.items()}, str(path), metadata=metadata)
    use_umask_mode(path)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder; raises ``OSError`` as ``open`` does.

    The file gets the umask's mode, as from ``open``. On any failure (a full disk, ``path`` a
    folder) the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        try:
            tmp.write(text)
            os.fchmod(tmp.fileno(), umask_mode())  # NamedTemporaryFile made it 0600
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    try:
        os.replace(tmp.name, path)
    except BaseException:
        os.unlink(tmp.name)
        raise

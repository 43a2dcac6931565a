"""Writing what a command produces without losing work: checked first, never over another file.

- ``writable_folder`` / ``writable_file``: called before the work (before a model loads or a
  reply is generated), they prove that a file can be created there, by creating one (not by
  ``os.access``, which says yes to root on a read-only file system and cannot see a full disk).
- ``new_file``: a file under a name nobody has used (``user-001.png``, then ``user-002.png``),
  created exclusively, so that a reused output folder never has an earlier file replaced.
- Atomic writes are ``files.write_text``'s (written beside and renamed).

Failures are ``UserError``s naming the path and the reason in words.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from photodialog.errors import UserError

_REASONS = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EEXIST: "a file of that name is in the way of a folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def reason(err: OSError) -> str:
    """What went wrong with a file operation, in words (no errno numbers)."""
    return _REASONS.get(err.errno or 0) or (err.strerror or str(err)).lower()


def writable_folder(folder: str | os.PathLike, what: str, *, create: bool = True) -> Path:
    """``folder`` once a file has been created and removed in it; ``UserError`` when that fails.

    ``what`` names the output for the message ("--out", "the chat's photos"). With ``create``
    the folder is made (with its parents); without, the nearest folder that exists is tried,
    so that a check leaves nothing behind (the work makes the folder when it writes).
    """
    folder = Path(folder)
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
            probe_in = folder
        else:
            probe_in = _nearest_existing(folder.absolute())
            if not probe_in.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(probe_in))
        handle, probe = tempfile.mkstemp(dir=probe_in, prefix=".photodialog-write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write {what} in {folder}: {reason(err)}; choose a folder you can write to") from None
    return folder


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def writable_file(path: str | os.PathLike, what: str, *, create: bool = True) -> Path:
    """``path``, once its folder is writable and it is not a folder itself; ``UserError`` otherwise.

    ``create``: whether its folder may be made now (see ``writable_folder``). An existing file
    is opened for appending (nothing is written), so that a read-only file is found now
    rather than after the work.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name, e.g. {path / 'dialogue.json'}")
    writable_folder(path.parent, what, create=create)
    if path.exists():
        try:
            with open(path, "ab"):
                pass
        except OSError as err:
            raise UserError(f"cannot write {what} {path}: {reason(err)}; choose another file") from None
    return path


def new_file(folder: Path, stem: str, suffix: str, *, first: int = 1) -> tuple[Path, BinaryIO]:
    """A file created exclusively as ``folder/<stem>-NNN<suffix>`` with the lowest free NNN >= ``first``.

    Returns the path and the file, open for binary writing. The exclusive create (``O_EXCL``)
    makes the name check and the creation one step, so that neither an earlier session's file
    nor another process's is ever replaced. Raises ``OSError`` when the folder cannot be written.
    """
    number = first
    while True:
        path = folder / f"{stem}-{number:03d}{suffix}"
        try:
            return path, open(path, "xb")  # noqa: SIM115 - the caller writes and closes it
        except FileExistsError:
            number += 1

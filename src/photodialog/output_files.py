"""Writing what a command produces without losing work: checked first, never over another file.

- ``writable_folder`` / ``writable_file``: called before the work (before a model loads or a
  reply is generated), they prove that a file can be created there, by creating one (not by
  ``os.access``, which says yes to root on a read-only file system and cannot see a full disk).
- ``new_file``: a file under a name nobody has used (``user-001.png``, then ``user-002.png``),
  created exclusively, so that a reused output folder never has an earlier file replaced.
- ``claim_folder``: an output folder is a command's own (an owner file names the command); an
  existing non-empty folder the command did not make is refused, never written into.
- ``lock_folder``: one writer at a time (``flock`` on a lock file naming its pid and host).
- Atomic writes are ``files.write_text``'s (written beside and renamed).

Failures are ``UserError``s naming the path and the reason in words.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from photodialog.errors import UserError
from photodialog.files import write_text

try:
    import fcntl
except ImportError:  # Windows: folders are not locked
    fcntl = None

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


# ------------------------------------------------------------ output folders a command owns, and their locks

OWNER_FILE = ".photodialog-owner"  # in an output folder: the command that made it (JSON; no .json suffix, which dataset loaders read)
LOCK_FILE = ".photodialog.lock"  # in a folder one process writes at a time: who holds it


def empty_out_problem(value: str | os.PathLike, flag: str = "--out") -> str | None:
    """A message when ``value`` is empty (an unset shell variable: it would mean the current folder)."""
    if not os.fspath(value).strip():
        return f"{flag} is empty (an unset variable?); give the folder or file to write, e.g. {flag} results"
    return None


def folder_owner_problem(folder: str | os.PathLike, command: str, *,
                         made_before: Callable[[Path], bool] | None = None, flag: str = "--out") -> str | None:
    """Why ``command`` may not write into ``folder`` (None: it may).

    It may when ``folder`` is missing or empty, or holds ``OWNER_FILE`` naming ``command`` (or
    ``made_before(folder)`` says a version that wrote no owner file made it). Any other folder
    holds someone else's files, which the command would replace or delete.
    """
    empty = empty_out_problem(folder, flag)
    if empty:
        return empty
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return f"{flag} {folder} is a file; give a folder (it is created if missing)"
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    owner = folder_owner(folder)
    if owner == command or (owner is None and made_before is not None and made_before(folder)):
        return None
    made = f"made by `photodialog {owner}`" if owner else f"not made by `photodialog {command}`"
    return (f"{flag} {folder} is not empty and was {made}: {command} writes and deletes files of its own "
            f"names there; give a new or empty folder (or the folder of an earlier `photodialog {command}`)")


def folder_owner(folder: Path) -> str | None:
    """The command named by ``folder``'s owner file (None: no readable owner file)."""
    try:
        owner = json.loads((Path(folder) / OWNER_FILE).read_text(encoding="utf-8")).get("made_by")
    except (OSError, ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


def claim_folder(folder: str | os.PathLike, command: str, *,
                 made_before: Callable[[Path], bool] | None = None, flag: str = "--out") -> Path:
    """``folder`` made (with its parents) and marked as ``command``'s output folder; returns it.

    Raises ``UserError`` with ``folder_owner_problem``'s message (before anything is written),
    or when the folder cannot be made or written.
    """
    problem = folder_owner_problem(folder, command, made_before=made_before, flag=flag)
    if problem:
        raise UserError(problem)
    folder = writable_folder(folder, flag)
    if folder_owner(folder) != command:
        try:
            write_text(folder / OWNER_FILE, json.dumps({"made_by": command}) + "\n")
        except OSError as err:
            raise UserError(f"cannot write {flag} {folder}: {reason(err)}; choose a folder you can write to") from None
    return folder


class FolderLock:
    """An exclusive ``flock`` on ``folder/LOCK_FILE``, held until ``release`` or the process ends (a
    kill -9 included: the kernel drops it). The file says who holds it (pid, host, since when)."""

    def __init__(self, handle, path: Path):
        self.handle, self.path = handle, path

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file drops the lock
            self.handle = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_folder(folder: str | os.PathLike, what: str) -> FolderLock:
    """Take ``folder``'s lock, or raise ``UserError`` naming the process that holds it.

    ``what`` names the folder for the message ("the run folder"). Without ``fcntl`` (Windows)
    nothing is locked.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the lock's life
    except OSError as err:
        raise UserError(f"cannot write {what} {folder}: {reason(err)}; choose a folder you can write to") from None
    if fcntl is None:
        return FolderLock(handle, path)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{what} {folder} is being written by {holder}; wait for it to finish (or stop it), "
                        "then run again, or choose another --out") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on host {socket.gethostname()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    handle.flush()
    return FolderLock(handle, path)


def folder_is_locked(folder: str | os.PathLike) -> bool:
    """Whether a live process holds ``folder``'s lock (False without a lock file, or without ``fcntl``)."""
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:  # a shared lock: two processes asking at once do not see each other
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    return False

"""Each server writes its sessions under a folder of its own and removes only what it made: several
servers may share one --out, and a folder under sessions/ that no server made is never removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image

from photodialog.cli.main import main
from photodialog.serving.session import ChatSession
from photodialog.serving.web import SESSIONS_DIR, DiskJanitor


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then))


def _session(janitor: DiskJanitor, name: str) -> ChatSession:
    session = ChatSession(janitor.sessions / name)
    session.save_photo(Image.new("RGB", (4, 4)), "0")
    return session


def test_two_servers_on_one_out_keep_each_others_and_the_users_sessions(tmp_path):
    users = tmp_path / SESSIONS_DIR / "2025-trip"
    users.mkdir(parents=True)
    (users / "diary.txt").write_text("the user's notes")
    _age(users, 2 * 24 * 3600)  # older than any session's time to live
    a = DiskJanitor(tmp_path, max_cache_bytes=1 << 30, session_ttl=3600).start(every=3600)
    b = DiskJanitor(tmp_path, max_cache_bytes=1 << 30, session_ttl=3600).start(every=3600)
    assert a.sessions != b.sessions and a.sessions.parent == b.sessions.parent == tmp_path / SESSIONS_DIR
    mine, theirs = _session(a, "visitor-a"), _session(b, "visitor-b")
    _age(theirs.out_dir, 2 * 3600)  # idle, but its server is alive: only b's janitor may remove it
    a.sweep()
    assert theirs.out_dir.is_dir() and (users / "diary.txt").is_file()
    a.stop()
    a.remove_sessions()  # server A stops: its sessions go, B's live session and the user's folder stay
    assert not mine.out_dir.exists() and theirs.photo_dir.is_dir() and list(theirs.photo_dir.iterdir())
    assert (users / "diary.txt").read_text() == "the user's notes"
    b.sweep()
    assert not theirs.out_dir.exists() and (users / "diary.txt").is_file()  # B's own idle session
    b.stop()
    b.remove_sessions()
    assert (users / "diary.txt").is_file()


def test_the_folder_of_a_server_that_is_gone_is_removed_once_idle(tmp_path):
    gone = DiskJanitor(tmp_path, max_cache_bytes=1 << 30, session_ttl=3600).start(every=3600)
    _session(gone, "left-behind")
    gone.stop()
    gone._lock.release()  # as the kernel does when a server is killed (kill -9): its folder stays
    alive = DiskJanitor(tmp_path, max_cache_bytes=1 << 30, session_ttl=3600).start(every=3600)
    alive.sweep()
    assert gone.sessions.is_dir()  # not idle long enough yet
    _age(gone.sessions, 2 * 3600)
    alive.sweep()
    assert not gone.sessions.exists() and alive.sessions.is_dir()
    alive.stop()
    alive.remove_sessions()


def test_serve_refuses_a_folder_of_other_files_before_loading(tmp_path, capsys):
    project = tmp_path / "project"
    (project / SESSIONS_DIR / "2025-trip").mkdir(parents=True)
    (project / SESSIONS_DIR / "2025-trip" / "diary.txt").write_text("mine")
    assert main(["serve", "--checkpoint", str(tmp_path / "not-loaded"), "--out", str(project)]) == 2
    assert "not made by `photodialog serve`" in capsys.readouterr().err
    assert sorted(p.name for p in project.rglob("*")) == ["2025-trip", "diary.txt", SESSIONS_DIR]

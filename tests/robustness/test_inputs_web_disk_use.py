"""Kind 10 of issue 18: the web page's disk and memory use are bounded; odd uploads get a message.

The issue's inputs: twenty 9 MB uploads never sent (180 MB kept under ``--out`` for a day);
an upload with an empty file name (HTTP 500); four 6300 x 6300 PNGs of 4.9 KB each in one
message (the server grew by 1 GB); saved dialogues holding absolute server paths. Now: the
pixels of a message are checked from the files' headers before any is decoded, a
conversation holds at most 32 photos and keeps each at most 1024 pixels wide, decoding
counts against a server-wide budget, the upload cache is trimmed to a byte budget (oldest
first), an ended session's folder is removed, an unreadable upload is answered with HTTP
400, and saved dialogues name photos relative to the file.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from PIL import Image

from photodialog.errors import UserError
from photodialog.serving.history import read_history
from photodialog.serving.limits import InputLimits, PixelBudget
from photodialog.serving.session import ChatSession
from photodialog.serving.web import CACHE_DIR, SESSIONS_DIR, ChatPage, DiskJanitor, build_app, launch

from .helpers import FAST, DrawingEngine

NO_CHANGE = (0, 2, 3.0, 0)  # temperature, diffusion steps, guidance, seed as the page sends them
SIDE = 6300  # the photo: 39.7 megapixels, under the 40-megapixel limit of one photo


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """The issue's upload: a 6300 x 6300 PNG of one colour (a few KB on disk)."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("P", (SIDE, SIDE), 0).save(path, optimize=True)
    return path


def _page(tmp_path, limits=None) -> ChatPage:
    return ChatPage(DrawingEngine(), tmp_path, FAST, limits or InputLimits())


def _send(page, session, text, files=()):
    return list(page.send({"text": text, "files": [str(f) for f in files]}, session, *NO_CHANGE))


# ------------------------------------------------------------ decoded pixels: per message, per session, in total


def test_four_huge_photos_in_one_message_are_refused_before_decoding(tmp_path, huge_png, monkeypatch):
    assert huge_png.stat().st_size < 100_000  # small on disk: only the header tells
    monkeypatch.setattr("photodialog.serving.limits.load_photo", lambda *a, **k: pytest.fail("a photo was decoded"))
    page = _page(tmp_path)
    *_, (chat, _, session, status) = _send(page, None, "look", [huge_png] * 4)
    assert "159 megapixels together, over the limit of 60 per message" in status
    assert chat == [] and session.history == [] and not (tmp_path / SESSIONS_DIR).exists()


def test_one_huge_photo_is_kept_at_most_1024_pixels_wide(tmp_path, huge_png):
    page = _page(tmp_path)
    *_, (_, _, session, status) = _send(page, None, "look", [huge_png])
    assert status == ""
    (kept,) = (session.out_dir / "photos").glob("user-*.png")
    assert Image.open(kept).size == (1024, 1024)


def test_a_conversation_holds_at_most_32_photos(tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8), (0, 90, 0)).save(photo)
    page = _page(tmp_path)
    session = None
    for _ in range(6):  # each message: 4 photos of the person's, 1 of the model's (every one is perceived again)
        *_, (_, _, session, status) = _send(page, session, "more", [photo] * 4)
        assert status == ""
    assert session.photo_count == 30
    *_, (_, _, session, status) = _send(page, session, "four more", [photo] * 4)
    assert "this conversation holds 30 photos and may hold 32" in status and session.photo_count == 30
    *_, (_, _, session, status) = _send(page, session, "two more", [photo] * 2)
    assert status == "" and session.photo_count == 33  # the model's reply may still share one


def test_the_server_wide_decoding_budget_refuses_a_second_large_message():
    budget = PixelBudget(100)
    with budget.reserve(70):
        with pytest.raises(UserError, match="busy decoding other visitors' photos"):
            with budget.reserve(40):
                pass
        with budget.reserve(30):
            assert budget.in_use == 100
    assert budget.in_use == 0
    with budget.reserve(150):  # alone, a message larger than the budget still goes (its own limit bounds it)
        pass


# ------------------------------------------------------------ files on disk


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_janitor_trims_the_upload_cache_oldest_first_and_spares_fresh_uploads(tmp_path):
    cache = tmp_path / CACHE_DIR
    files = []
    for number in range(20):  # twenty uploads never sent, the oldest first
        folder = cache / f"hash{number:02d}"
        folder.mkdir(parents=True)
        path = folder / f"photo{number}.jpg"
        path.write_bytes(os.urandom(100_000))
        _age(path, 10_000 - number * 100)
        files.append(path)
    _age(files[-1], 10)  # being attached right now
    janitor = DiskJanitor(tmp_path, max_cache_bytes=550_000, grace=60)
    freed = janitor.sweep()
    kept = [path for path in files if path.exists()]
    assert kept == files[-5:] and freed == 15 * 100_000
    assert not (cache / "hash00").exists()  # the emptied upload folders go too
    late = files[-1].parent / "late.jpg"
    late.write_bytes(os.urandom(600_000))  # fresh, and over the budget on its own
    janitor.sweep()
    assert [path for path in files if path.exists()] == files[-1:] and late.exists()  # the old go, the fresh stay


def test_a_flood_of_fresh_uploads_is_trimmed_too(tmp_path):
    cache = tmp_path / CACHE_DIR
    for number in range(30):  # thirty uploads in the last minute: three times the budget
        path = cache / f"h{number:02d}" / "p.jpg"
        path.parent.mkdir(parents=True)
        path.write_bytes(os.urandom(100_000))
        _age(path, 60 - number)
    DiskJanitor(tmp_path, max_cache_bytes=1_000_000, grace=300).sweep()
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) == 2_000_000  # back to twice the budget


def test_the_janitor_removes_sessions_nobody_used_for_long(tmp_path):
    janitor = DiskJanitor(tmp_path, max_cache_bytes=1 << 30, session_ttl=7 * 3600)
    old, fresh = ChatSession(janitor.sessions / "old"), ChatSession(janitor.sessions / "fresh")  # this server's sessions
    for session in (old, fresh):
        session.save_photo(Image.new("RGB", (4, 4)), "0")
    for path in [old.out_dir, *old.out_dir.rglob("*")]:
        _age(path, 10 * 3600)
    janitor.sweep()
    assert not old.out_dir.exists() and fresh.out_dir.exists()


def test_an_ended_session_leaves_nothing(tmp_path):
    page = _page(tmp_path)
    *_, (_, _, session, _) = _send(page, None, "hello")
    other = ChatSession(tmp_path / "elsewhere")
    other.save_photo(Image.new("RGB", (4, 4)), "0")
    assert session.out_dir.is_dir()
    app = build_app(page.engine, tmp_path, FAST)
    (state,) = [block for block in app.blocks.values() if type(block).__name__ == "State"]
    state.delete_callback(session)  # what Gradio calls when it drops the session's state
    state.delete_callback(None)  # a tab that never sent anything
    page.end_session(other)  # not under sessions/: not the page's to remove
    assert not session.out_dir.exists() and other.out_dir.is_dir()


class _Uncopyable(DrawingEngine):
    def __deepcopy__(self, memo):
        raise AssertionError("the engine (and its model) was deep-copied")


def test_the_session_state_never_carries_the_model(tmp_path):
    """Gradio deep-copies a state's config (its constructor arguments, the callback included) per
    visitor: a callback bound to the page copied the whole model each time."""
    import copy

    app = build_app(_Uncopyable(), tmp_path, FAST)
    (state,) = [block for block in app.blocks.values() if type(block).__name__ == "State"]
    copy.deepcopy(state.get_config())


def test_a_saved_web_dialogue_names_photos_relative_to_itself(tmp_path, huge_png):
    page = _page(tmp_path)
    *_, (_, _, session, _) = _send(page, None, "look", [huge_png])
    saved, status = page.save(session)  # the saved file's path (the page's API returns it)
    assert "Saved" in status
    text = open(saved, encoding="utf-8").read()
    assert str(tmp_path) not in text  # no server path
    urls = [m["photo_url"] for m in json.loads(text)[0]["dialogue"] if m["share_photo"]]
    assert urls == ["photos/user-001.png", "photos/bot-001.png"]
    turns = read_history(saved)  # and read back, from wherever the folder is
    assert [photo.path for turn in turns for photo in turn.photos] == [
        str(session.out_dir / "photos" / "user-001.png"), str(session.out_dir / "photos" / "bot-001.png")]


@pytest.mark.parametrize("message, complaint", [
    ({"text": "hi", "files": [""]}, None),  # an empty entry is no photo
    ({"text": "hi", "files": [5]}, "send photos as a list of uploaded files"),
    ({"text": "hi", "files": "photo.jpg"}, "send photos as a list of uploaded files"),
    ({"text": "hi", "files": ["/gone/away/photo.jpg"]}, "the upload 'photo.jpg' is no longer on the server"),
    ("just text", 'send a message as {"text"'),
])
def test_odd_messages_get_a_message(tmp_path, message, complaint):
    page = _page(tmp_path)
    *_, (_, _, _, status) = list(page.send(message, None, *NO_CHANGE))
    assert (status == "") if complaint is None else (complaint in status)


# ------------------------------------------------------------ over HTTP


@pytest.fixture
def served(tmp_path):
    """The page with a stand-in model, served on 127.0.0.1; Gradio's cache setting restored after."""
    import socket

    previous = os.environ.get("GRADIO_TEMP_DIR")
    app = build_app(DrawingEngine(), tmp_path, FAST)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = launch(app, "127.0.0.1", port)
    yield url, tmp_path, app
    app.photodialog_janitor.stop()
    app.close()
    if previous is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous


def test_an_upload_with_an_empty_file_name_gets_400_and_a_message(served):
    import httpx

    url, _, _ = served
    answer = httpx.post(f"{url}gradio_api/upload", files={"files": ("", b"\x89PNG...", "image/png")}, timeout=30)
    assert answer.status_code == 400
    assert "send each photo as a file with a name" in answer.json()["detail"]
    fine = httpx.post(f"{url}gradio_api/upload", files={"files": ("ok.png", b"\x89PNG...", "image/png")}, timeout=30)
    assert fine.status_code == 200  # the server kept serving


def test_uploads_never_sent_are_trimmed_to_the_cache_budget(served):
    import httpx

    url, out, app = served
    for number in range(20):
        answer = httpx.post(f"{url}gradio_api/upload",
                            files={"files": (f"big{number}.jpg", os.urandom(1_000_000), "image/jpeg")}, timeout=30)
        assert answer.status_code == 200
    cache = out / CACHE_DIR
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) >= 20_000_000
    janitor = app.photodialog_janitor
    janitor.max_cache_bytes, janitor.grace = 5_000_000, 0
    janitor.sweep()
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) <= 5_000_000


def test_a_full_disk_on_the_server_costs_no_reply_and_no_history(tmp_path, monkeypatch):
    import errno

    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(photo)
    page = _page(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("photodialog.serving.session.new_file", full)
    *_, (chat, _, session, status) = _send(page, None, "look", [photo])
    assert "could not save your photo" in status and session.history == [] and chat == []
    *_, (chat, _, session, status) = _send(page, session, "just text")
    assert "could not be saved on the server" in status
    assert [m["role"] for m in chat] == ["user", "assistant"]  # the reply is shown, its photo as its caption
    assert session.history[1].photos[0].path is None

"""`photodialog serve`: the page's handlers, and the page over HTTP with one or many visitors."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from photodialog.errors import UserError
from photodialog.serving.engine import ChatEngine
from photodialog.serving.limits import InputLimits
from photodialog.serving.web import ChatPage, build_app, launch

from .helpers import DRAWN_CAPTION, FAST, free_port

NO_CHANGE = (0, 2, 3.0, 0)  # temperature (greedy), diffusion steps, guidance, seed as the page sends them


def _page(tiny_system, tmp_path) -> ChatPage:
    return ChatPage(ChatEngine(tiny_system), tmp_path, FAST, InputLimits())


def _send(page, session, text, files=()):
    """Every (chat, box, session, status) the handler yields for one message."""
    return list(page.send({"text": text, "files": [str(f) for f in files]}, session, *NO_CHANGE))


def _texts(chat) -> list[str]:
    return [piece for message in chat for piece in (message["content"] if isinstance(message["content"], list) else [message["content"]])
            if isinstance(piece, str)]


# ------------------------------------------------------------ handlers, in process


def test_a_message_streams_then_shows_the_reply_and_its_photo(tiny_system, tmp_path, model_always_draws, world_photo):
    updates = _send(_page(tiny_system, tmp_path), None, "look at mine", [world_photo])
    chat, box, session, status = updates[0]
    assert box == {"text": "", "files": []} and status == ""  # the box empties as the message is taken
    assert chat[-1] == {"role": "assistant", "content": "…"}
    assert any(u[3].startswith("Drawing a photo: step 1 of 2") for u in updates)
    chat, _, session, status = updates[-1]
    assert status == "" and [m["role"] for m in chat] == ["user", "assistant"]
    user_photo, bot_photo = session.history[0].photos[0].path, session.history[1].photos[0].path
    assert {"path": user_photo, "alt_text": "a photo"} in chat[0]["content"]
    assert {"path": bot_photo, "alt_text": DRAWN_CAPTION} in chat[1]["content"]
    for path in (user_photo, bot_photo):
        assert Path(path).is_relative_to(tmp_path / "sessions") and Path(path).is_file()


@pytest.mark.parametrize("text, upload, complaint", [
    ("look", "{bad}", "'notes.png' cannot be used as a photo: it is not an image"),
    ("look", "{cut}", "'cut.png' cannot be used as a photo: it is truncated or corrupt"),
    ("   ", None, "the message is empty"),
])
def test_bad_input_is_shown_and_changes_nothing(tiny_system, tmp_path, not_an_image, truncated_photo, text, upload, complaint,
                                                model_always_draws):
    page = _page(tiny_system, tmp_path / "out")
    session = _send(page, None, "hello")[-1][2]
    files = [upload.format(bad=not_an_image, cut=truncated_photo)] if upload else []
    (update,) = _send(page, session, text, files)
    chat, box, same_session, status = update
    assert status.startswith(f"**Could not send:** {complaint}")
    assert same_session is session and len(session.history) == 2 and len(chat) == 2
    assert str(not_an_image) not in status


def test_sessions_do_not_share_history_or_folders(tiny_system, tmp_path, model_always_draws):
    page = _page(tiny_system, tmp_path)
    first = _send(page, None, "I am the first")[-1][2]
    second = _send(page, None, "I am the second")[-1][2]
    _send(page, first, "still the first")
    assert "I am the second" not in " ".join(t.text for t in first.history)
    assert [t.text for t in second.history][0] == "I am the second" and len(second.history) == 2
    assert first.out_dir != second.out_dir and first.out_dir.parent == second.out_dir.parent == page.sessions_dir
    assert page.sessions_dir.parent == tmp_path / "sessions"  # sessions/<this server>/<session>


def test_a_failed_reply_is_reported_and_undone(tiny_system, tmp_path):
    class Broken:
        def reply(self, *args, **kwargs):
            raise RuntimeError("CUDA out of memory")

    page = ChatPage(ChatEngine(Broken()), tmp_path, replace(FAST, decoding="beam"), InputLimits())
    chat, _, session, status = _send(page, None, "hello")[-1]
    assert "the model failed to reply (RuntimeError)" in status and session.history == [] and chat == []


def test_page_settings_override_the_defaults(tiny_system, tmp_path):
    page = _page(tiny_system, tmp_path)
    assert page.settings(0, 7, 2.5, 11) == replace(FAST, decoding="greedy", diffusion_steps=7, guidance_scale=2.5, seed=11)
    assert page.settings(0.7, None, None, None) == replace(FAST, decoding="sample", temperature=0.7)
    assert page.settings(None, None, None, None) == FAST  # an API call that leaves them out
    beam = ChatPage(page.engine, tmp_path, replace(FAST, decoding="beam"), InputLimits())
    assert beam.settings(0, None, None, None).decoding == "beam"
    for bad, complaint in [((0, 0, 3, 0), "diffusion steps"), (("hot", 2, 3, 0), "not a number"), ((-1, 2, 3, 0), "temperature")]:
        with pytest.raises(UserError, match=complaint):
            page.settings(*bad)


def test_an_empty_reply_is_explained(tiny_system, tmp_path, monkeypatch):
    from photodialog.models.generation import Reply
    from photodialog.system import DialogueSystem

    monkeypatch.setattr(DialogueSystem, "reply", lambda self, *args, **kwargs: Reply(text=""))
    chat, _, session, status = _send(_page(tiny_system, tmp_path), None, "hello")[-1]
    assert "reply was empty" in status and [m["role"] for m in chat] == ["user"]


def test_new_chat_and_save(tiny_system, tmp_path):
    page = _page(tiny_system, tmp_path)
    assert "nothing to save" in page.save(None)[1]
    session = _send(page, None, "hello")[-1][2]
    download, status = page.save(session)
    assert Path(download).is_file() and Path(download).parent == session.out_dir  # the path: what /save returns
    chat, same, status = page.new_chat(session)
    assert chat == [] and same.history == [] and "New conversation" in status


# ------------------------------------------------------------ over HTTP


@pytest.fixture(scope="module")
def server(tiny_system, tmp_path_factory):
    """The page served on 127.0.0.1 from this process; closed (and Gradio's cache setting restored) after."""
    out = tmp_path_factory.mktemp("serve")
    previous = os.environ.get("GRADIO_TEMP_DIR")
    app = build_app(ChatEngine(tiny_system), out, FAST, concurrency=4, queue_size=64)
    url = launch(app, "127.0.0.1", free_port())
    yield url, out
    app.close()
    if previous is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def _api_send(client, text, files=()):
    from gradio_client import handle_file

    return client.predict({"text": text, "files": [handle_file(str(f)) for f in files]}, *NO_CHANGE, api_name="/send")


def test_over_http_a_visitor_chats_with_photos_and_bad_uploads_are_explained(server, world_photo, not_an_image, model_always_draws):
    url, out = server
    client = _client(url)
    chat, _, status = _api_send(client, "hello there")
    assert status == "" and [m["role"] for m in chat] == ["user", "assistant"]
    chat, _, status = _api_send(client, "look", [world_photo])
    assert status == "" and len(chat) == 4
    assert [c["type"] for c in chat[2]["content"]] == ["text", "file"]
    assert list(out.glob("sessions/*/*/photos/user-001.png")), "the upload was not kept in the session folder"
    assert any((out / "gradio-cache").rglob(world_photo.name)), "Gradio's upload cache is not under --out"
    chat, _, status = _api_send(client, "and this", [not_an_image])
    assert "'notes.png' cannot be used as a photo" in status and len(chat) == 4
    chat, _, status = _api_send(client, "still there?")
    assert status == "" and len(chat) == 6  # the server kept serving, the history kept going


def test_over_http_a_path_outside_the_upload_cache_is_refused(server):
    import httpx

    url, out = server
    secret = {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}
    posted = httpx.post(f"{url}gradio_api/call/send", json={"data": [{"text": "hi", "files": [secret]}, *NO_CHANGE]}, timeout=30)
    assert posted.status_code == 200
    events = httpx.get(f"{url}gradio_api/call/send/{posted.json()['event_id']}", timeout=60).text
    assert "event: error" in events and "event: complete" not in events
    assert not list(out.rglob("hostname*")), "a file named by the request was copied"


def _chat_alone(url, number, results):
    try:
        chat, _, status = _api_send(_client(url), f"message number {number}")
        results[number] = (chat, status)
    except Exception as err:  # noqa: BLE001 - recorded for the assertion
        results[number] = err


def test_twenty_visitors_at_once_each_get_their_own_reply(server, model_always_draws):
    url, _ = server
    results: dict = {}
    threads = [threading.Thread(target=_chat_alone, args=(url, n, results)) for n in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    failed = {n: r for n, r in results.items() if isinstance(r, Exception)}
    assert len(results) == 20 and not failed, failed
    for number, (chat, status) in results.items():
        assert status == ""
        assert [m["role"] for m in chat] == ["user", "assistant"]  # its own message and reply, nobody else's
        assert chat[0]["content"] == [{"text": f"message number {number}", "type": "text"}]
        assert chat[1]["content"][-1] == {"text": f"*{DRAWN_CAPTION}*", "type": "text"}
    print(f"20 concurrent visitors answered in {time.monotonic() - started:.1f} s")

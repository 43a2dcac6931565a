"""Downloads that do not stop: a host that trickles bytes is cut off at the attempt's deadline, and
Ctrl-C ends a download promptly with the manifest written and no .part file (issue 18 item 7).
Every server here is on 127.0.0.1."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "download"))
from download_helpers import GOOD_JPEG, LocalServer, photochat_dialogue, serve_photochat  # noqa: E402

from photodialog.data.download.http import FetchCancelled, FetchError, HttpLimits, fetch  # noqa: E402


def trickle(every: float, headers_too: bool = False, total: int = 10_000):
    """One byte every ``every`` seconds, each well inside the socket timeout; the status line and
    headers too when ``headers_too``."""

    def route(handler, hit):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % total
        try:
            if headers_too:
                for byte in head:
                    handler.wfile.write(bytes([byte]))
                    time.sleep(every)
            else:
                handler.wfile.write(head)
            for _ in range(total):
                handler.wfile.write(b"\xff")
                time.sleep(every)
        except OSError:
            pass  # the client hung up, as it should

    return route


@pytest.fixture
def server():
    running = LocalServer()
    yield running
    running.close()


def read_all(body) -> bytes:
    return b"".join(body.chunks)


@pytest.mark.parametrize("headers_too", [False, True], ids=["slow-body", "slow-headers"])
def test_a_trickling_host_is_cut_off_at_the_attempt_deadline_and_not_asked_again(server, headers_too):
    url = server.add("/trickle.jpg", trickle(0.1, headers_too))
    limits = HttpLimits(timeout=0.5, retries=3, backoff=0.01, attempt_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="too slow: no complete answer within 1 s") as caught:
        fetch(url, read_all, limits)
    elapsed = time.monotonic() - started
    assert caught.value.attempts == 1 and server.hits("/trickle.jpg") == 1
    assert 1.0 <= elapsed < 2.5  # the deadline plus the watchdog's poll, not the 10 000 bytes x 0.1 s


def test_the_default_deadline_is_six_socket_timeouts(server):
    url = server.add("/trickle.jpg", trickle(0.05))
    started = time.monotonic()
    with pytest.raises(FetchError, match="too slow"):
        fetch(url, read_all, HttpLimits(timeout=0.2, retries=0))
    assert 1.2 <= time.monotonic() - started < 2.5


def test_a_stop_request_ends_a_blocked_read_at_once(server):
    url = server.add("/trickle.jpg", trickle(0.1))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(FetchCancelled):
        fetch(url, read_all, HttpLimits(timeout=5, retries=3, attempt_seconds=60), stop=stop)
    assert time.monotonic() - started < 1.5


def test_a_fast_answer_is_unaffected_by_the_watchdog(server):
    from download_helpers import respond

    url = server.add("/ok.jpg", respond(GOOD_JPEG))
    data, attempts = fetch(url, read_all, HttpLimits(timeout=1, attempt_seconds=2))
    assert data == GOOD_JPEG and attempts == 1


def test_ctrl_c_on_trickling_hosts_exits_promptly_with_the_manifest_and_no_part_file(server, tmp_path):
    import os
    import signal
    import subprocess

    from download_helpers import respond

    records = []
    for index in range(6):
        route = respond(GOOD_JPEG) if index < 2 else trickle(0.5)
        url = server.add(f"/p/{index}.jpg", route)
        records.append(photochat_dialogue(index, url, f"train/{index}", "Objects in the photo: Cup"))
    base_url = serve_photochat(server, {"train/train_00.json": records})
    process = subprocess.Popen(
        [sys.executable, "-m", "photodialog", "data", "download", "photochat", "--out", str(tmp_path),
         "--base-url", base_url, "--splits", "train", "--workers", "6", "--timeout", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # see test_download_cli
    )
    deadline = time.monotonic() + 60
    while sum(server.hits(f"/p/{i}.jpg") for i in range(2, 6)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the trickling reads are under way
    os.kill(process.pid, signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 5, "Ctrl-C did not end the download promptly"
    assert process.returncode == 130 and "interrupted" in out, err
    from photodialog.data.download.manifest import load_manifest

    manifest = load_manifest(tmp_path)
    assert sorted((entry.stem, entry.status) for entry in manifest.values()) == [("train/0", "ok"), ("train/1", "ok")]
    assert not list(tmp_path.rglob("*.part")), "a partial download was left behind"

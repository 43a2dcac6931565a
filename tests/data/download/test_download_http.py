"""One URL with limits: what is retried, what is not, and when the body is cut off."""

from __future__ import annotations

import threading
import time

import pytest
from download_helpers import GOOD_JPEG, endless, redirect, respond, sequence, slow, status

from photodialog.data.download.http import FetchCancelled, FetchError, HttpLimits, fetch

FAST = HttpLimits(timeout=0.3, retries=2, backoff=0.01, max_bytes=100_000)


def read_all(body) -> bytes:
    return b"".join(body.chunks)


def test_a_good_response_is_read_in_one_attempt(server):
    url = server.add("/a.jpg", respond(GOOD_JPEG))
    data, attempts = fetch(url, read_all, FAST)
    assert data == GOOD_JPEG and attempts == 1


@pytest.mark.parametrize("code", [503, 500, 429])
def test_transient_errors_are_retried(server, code):
    url = server.add("/t.jpg", sequence(status(code), status(code), respond(GOOD_JPEG)))
    data, attempts = fetch(url, read_all, FAST)
    assert data == GOOD_JPEG and attempts == 3
    assert server.hits("/t.jpg") == 3


def test_gives_up_after_the_allowed_retries(server):
    url = server.add("/down.jpg", status(503))
    with pytest.raises(FetchError) as caught:
        fetch(url, read_all, FAST)
    assert caught.value.reason == "http 503"
    assert caught.value.attempts == 3 and server.hits("/down.jpg") == 3


@pytest.mark.parametrize("code", [400, 403, 404, 410])
def test_client_errors_are_not_retried(server, code):
    url = server.add("/c.jpg", status(code))
    with pytest.raises(FetchError) as caught:
        fetch(url, read_all, FAST)
    assert caught.value.reason == f"http {code}" and caught.value.attempts == 1
    assert server.hits("/c.jpg") == 1


def test_backoff_grows_between_retries(server):
    url = server.add("/b.jpg", status(500))
    limits = HttpLimits(timeout=1, retries=2, backoff=0.1)
    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch(url, read_all, limits)
    # 0.1 then 0.2 seconds (each with at most 20 % jitter)
    assert time.monotonic() - started >= 0.8 * 0.3


def test_retry_after_is_honoured(server):
    url = server.add("/r.jpg", sequence(status(429, {"Retry-After": "0.4"}), respond(GOOD_JPEG)))
    started = time.monotonic()
    _, attempts = fetch(url, read_all, HttpLimits(timeout=1, retries=1, backoff=0.01))
    assert attempts == 2 and time.monotonic() - started >= 0.4


def test_a_slow_server_times_out_and_is_retried(server):
    url = server.add("/slow.jpg", slow(1.0, respond(GOOD_JPEG)))
    limits = HttpLimits(timeout=0.2, retries=1, backoff=0.01)
    with pytest.raises(FetchError) as caught:
        fetch(url, read_all, limits)
    assert caught.value.reason == "timeout" and caught.value.attempts == 2


def test_a_declared_size_over_the_limit_is_refused_before_reading(server):
    url = server.add("/big.jpg", respond(b"\xff" * 200_000))
    consumed = []
    with pytest.raises(FetchError, match="too large"):
        fetch(url, lambda body: consumed.append(1), FAST)
    assert consumed == [] and server.hits("/big.jpg") == 1


def test_the_size_limit_is_enforced_while_streaming(server):
    total = 64 * 1024 * 1024
    url = server.add("/stream.jpg", endless(total))
    received = []

    def consume(body):
        for chunk in body.chunks:
            received.append(len(chunk))

    with pytest.raises(FetchError, match="too large"):
        fetch(url, consume, FAST)
    assert sum(received) <= FAST.max_bytes
    time.sleep(0.2)  # let the server notice that the client hung up
    assert server.sent("/stream.jpg") < total
    assert server.hits("/stream.jpg") == 1  # too large is final: not retried


def test_content_type_refusal_is_final(server):
    url = server.add("/page", respond(b"<html></html>", "text/html; charset=utf-8"))
    refuse = lambda url, ctype: None if ctype.startswith("image/") else f"not an image: {ctype}"  # noqa: E731
    with pytest.raises(FetchError) as caught:
        fetch(url, read_all, FAST, refuse=refuse)
    assert caught.value.reason == "not an image: text/html" and server.hits("/page") == 1


def test_redirects_are_followed_and_the_refusal_sees_the_final_url(server):
    server.add("/moved.jpg", redirect("/final.jpg"))
    server.add("/final.jpg", respond(GOOD_JPEG))
    seen = []
    data, attempts = fetch(server.url("/moved.jpg"), read_all, FAST, refuse=lambda url, ctype: seen.append(url))
    assert data == GOOD_JPEG and attempts == 1 and seen == [server.url("/final.jpg")]


def test_connection_refused_is_a_retryable_connection_error(server):
    port = server._server.server_address[1]
    server.close()
    with pytest.raises(FetchError) as caught:
        fetch(f"http://127.0.0.1:{port}/x.jpg", read_all, FAST)
    assert caught.value.reason.startswith("connection error") and caught.value.attempts == 3
    server.close = lambda: None  # already closed


def test_bad_urls_and_local_files(tmp_path):
    with pytest.raises(FetchError, match="bad url"):
        fetch("not a url", read_all, FAST)
    local = tmp_path / "x.json"
    local.write_text("[]")
    data, _ = fetch(local.as_uri(), read_all, HttpLimits(max_bytes=None))
    assert data == b"[]"
    with pytest.raises(FetchError, match="file not found"):
        fetch((tmp_path / "missing.json").as_uri(), read_all, FAST)


def test_a_stop_request_cancels_a_retry_wait(server):
    url = server.add("/w.jpg", status(503))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(FetchCancelled):
        fetch(url, read_all, HttpLimits(timeout=1, retries=3, backoff=30), stop=stop)
    assert time.monotonic() - started < 5

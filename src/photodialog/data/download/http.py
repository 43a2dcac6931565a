"""Fetch one URL with limits: timeouts, retries with exponential backoff, a size cap.

Only the standard library is used. Each attempt opens the URL and hands the body, chunk by
chunk, to a ``consume`` function (write it to a file, or read the first N records of it);
an error while reading restarts the whole attempt. What is retried and what is not:

- retried: timeouts, dropped connections, HTTP 5xx and 429 (honouring ``Retry-After``)
- not retried: other HTTP 4xx, unknown hosts, certificate errors, a wrong content type,
  a body over the size limit -- asking again would give the same answer.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from photodialog import __version__

T = TypeVar("T")
READ_BYTES = 64 * 1024
USER_AGENT = f"photodialog/{__version__} (dataset download; python urllib)"


@dataclass(frozen=True)
class HttpLimits:
    """How long to wait, how often to retry and how much to accept for one URL."""

    timeout: float = 20.0  # seconds for each socket operation: connect, and every read
    retries: int = 3  # attempts after the first, for transient failures only
    backoff: float = 1.0  # seconds before the first retry; doubled for each further one
    max_backoff: float = 60.0
    max_bytes: int | None = 20_000_000  # None: no limit (dialogue files)
    attempt_seconds: float | None = None  # wall time per attempt; None: 6 x timeout

    @property
    def attempt_deadline(self) -> float:
        # A server that trickles one byte per timeout would never trip the socket timeout.
        return self.attempt_seconds if self.attempt_seconds is not None else 6 * self.timeout


class FetchError(Exception):
    """A failed fetch; ``reason`` is short and stable enough to count failures by it."""

    def __init__(self, reason: str, retryable: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 0


class FetchCancelled(Exception):
    """The caller asked to stop (Ctrl-C) while a fetch was running or waiting to retry."""


@dataclass
class Body:
    """The response being read: its headers and its chunks (the size limit is enforced here)."""

    url: str
    content_type: str
    content_length: int | None
    chunks: Iterator[bytes]


def fetch(
    url: str,
    consume: Callable[[Body], T],
    limits: HttpLimits,
    refuse: Callable[[str, str], str | None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[T, int]:
    """``consume`` the body of ``url``; returns its result and the number of attempts made.

    ``refuse(final_url, content_type)`` returns a reason to refuse the response (after
    redirects), or None to accept it.
    Raises ``FetchError`` (with ``attempts`` set) when every allowed attempt failed.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return _attempt(url, consume, limits, refuse, stop), attempt
        except FetchError as err:
            err.attempts = attempt
            if not err.retryable or attempt > limits.retries:
                raise
            _wait(_retry_delay(err, attempt, limits), stop)


def _retry_delay(err: FetchError, attempt: int, limits: HttpLimits) -> float:
    if err.retry_after is not None:
        return min(err.retry_after, limits.max_backoff)
    delay = limits.backoff * 2 ** (attempt - 1)
    # Jitter, so that many workers that failed together do not retry together.
    return min(delay * random.uniform(0.8, 1.2), limits.max_backoff)


def _wait(seconds: float, stop: threading.Event | None) -> None:
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise FetchCancelled()


def _attempt(url, consume, limits, refuse, stop):
    response = _open(url, limits)
    with response:
        final_url = response.geturl() or url
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        refusal = refuse(final_url, content_type) if refuse else None
        if refusal:
            raise FetchError(refusal)
        length = _content_length(response)
        if limits.max_bytes is not None and length is not None and length > limits.max_bytes:
            raise FetchError(f"too large: > {limits.max_bytes} bytes")
        chunks = _read_chunks(response, limits, stop)
        body = Body(url=final_url, content_type=content_type, content_length=length, chunks=chunks)
        return consume(body)


def _open(url: str, limits: HttpLimits):
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        return urllib.request.urlopen(request, timeout=limits.timeout)
    except urllib.error.HTTPError as err:
        err.close()
        raise _http_error(err.code, err.headers.get("Retry-After") if err.headers else None) from None
    except urllib.error.URLError as err:
        raise _network_error(err.reason) from None
    except ValueError as err:  # "unknown url type" and the like
        raise FetchError(f"bad url: {err}") from None
    except (OSError, http.client.HTTPException) as err:
        raise _network_error(err) from None


def _http_error(code: int, retry_after: str | None) -> FetchError:
    transient = code == 429 or code >= 500
    return FetchError(f"http {code}", retryable=transient, retry_after=_parse_retry_after(retry_after))


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _network_error(reason: object) -> FetchError:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return FetchError("timeout", retryable=True)
    if isinstance(reason, socket.gaierror):
        return FetchError("host not found")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return FetchError("ssl certificate error")
    if isinstance(reason, FileNotFoundError):  # file:// URLs
        return FetchError("file not found")
    name = type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
    return FetchError(f"connection error: {name}", retryable=True)


def _content_length(response) -> int | None:
    try:
        value = response.headers.get("Content-Length")
        return int(value) if value is not None else None
    except ValueError:
        return None


def _read_chunks(response, limits: HttpLimits, stop: threading.Event | None) -> Iterator[bytes]:
    """The body in chunks; stops as soon as the size limit is passed, never after the fact."""
    deadline = time.monotonic() + limits.attempt_deadline
    total = 0
    while True:
        if stop is not None and stop.is_set():
            raise FetchCancelled()
        try:
            chunk = response.read(READ_BYTES)
        except (TimeoutError, socket.timeout):
            raise FetchError("timeout", retryable=True) from None
        except (OSError, http.client.HTTPException) as err:
            raise _network_error(err) from None
        if not chunk:
            return
        total += len(chunk)
        if limits.max_bytes is not None and total > limits.max_bytes:
            raise FetchError(f"too large: > {limits.max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchError("timeout", retryable=True)
        yield chunk

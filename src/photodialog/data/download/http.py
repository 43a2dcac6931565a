"""Fetch one URL with limits: timeouts, retries with exponential backoff, a size cap.

Only the standard library is used. Each attempt opens the URL and hands the body, chunk by
chunk, to a ``consume`` function (write it to a file, or read the first N records of it);
an error while reading restarts the whole attempt. What is retried and what is not:

- retried: timeouts, dropped connections, HTTP 5xx and 429 (honouring ``Retry-After``)
- not retried: other HTTP 4xx, unknown hosts, certificate errors, a wrong content type,
  a body over the size limit, a host too slow to answer within the attempt's deadline --
  asking again would give the same answer.

**Deadline.** The socket timeout bounds each wait, but a host that sends one byte just inside
it would keep an attempt alive for ever (headers included). A watchdog thread per attempt
closes the attempt's sockets when ``HttpLimits.attempt_deadline`` has passed, or as soon as the
caller's ``stop`` event is set (Ctrl-C), so a blocked read returns at once and the attempt ends
with ``FetchError("too slow: ...")`` or ``FetchCancelled``.
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
        """Seconds one attempt may take in all (headers and body): ``attempt_seconds``, else 6 x ``timeout``."""
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


class _Watchdog:
    """Closes the sockets of one attempt at its deadline or when ``stop`` is set.

    The sockets are registered by the connection classes below (through a thread-local, since
    each worker thread runs one attempt at a time), also those of redirects.
    """

    POLL_SECONDS = 0.05

    def __init__(self, seconds: float, stop: threading.Event | None):
        self.seconds, self.stop = seconds, stop
        self.deadline = time.monotonic() + seconds
        self.sockets: list[socket.socket] = []
        self.fired: str | None = None  # "deadline" or "stop"
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="fetch-deadline", daemon=True)

    def __enter__(self) -> "_Watchdog":
        _current.watchdog = self
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        _current.watchdog = None
        self._done.set()
        self._thread.join()

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self.sockets.append(sock)
            fired = self.fired
        if fired:
            _close(sock)

    def _watch(self) -> None:
        while not self._done.wait(self.POLL_SECONDS):
            reason = "stop" if self.stop is not None and self.stop.is_set() else None
            if reason is None and time.monotonic() >= self.deadline:
                reason = "deadline"
            if reason:
                with self._lock:
                    self.fired = reason
                    sockets = list(self.sockets)
                for sock in sockets:
                    _close(sock)
                return

    def check(self) -> None:
        """Raise what the watchdog did, if it fired (a closed socket may look like a normal end)."""
        if self.fired == "stop":
            raise FetchCancelled()
        if self.fired == "deadline":
            raise FetchError(f"too slow: no complete answer within {self.seconds:g} s")


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on this socket
    except OSError:
        pass  # already closed


_current = threading.local()


def _register(sock) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.register(sock)


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        _register(self.sock)


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        _register(self.sock)


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_WatchedHTTPConnection, req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        # Python 3.11 still passes check_hostname; later versions dropped the argument.
        extra = {"check_hostname": self._check_hostname} if hasattr(self, "_check_hostname") else {}
        return self.do_open(_WatchedHTTPSConnection, req, context=self._context, **extra)


_opener = urllib.request.build_opener(_WatchedHTTPHandler, _WatchedHTTPSHandler)


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
    with _Watchdog(limits.attempt_deadline, stop) as watchdog:
        try:
            return _attempt_body(url, consume, limits, refuse, stop)
        except (FetchError, OSError, http.client.HTTPException):
            watchdog.check()  # the error came from the watchdog closing the socket: say so
            raise
        finally:
            watchdog.check()  # also when the closed socket looked like the normal end of the body


def _attempt_body(url, consume, limits, refuse, stop):
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
        return _opener.open(request, timeout=limits.timeout)
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
        yield chunk

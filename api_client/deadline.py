"""A deadline for a whole call, enforced by one watchdog thread that cuts its sockets.

Socket timeouts bound each read, not a call: a server that drips a header line or a body byte
just inside the read timeout keeps a call (and the thread running it) forever. So a call runs
inside ``deadline(seconds)``, which puts a ``Deadline`` in a ``ContextVar``; the transport's
connections register their socket with it while the call uses them (``watch``/``unwatch``),
and the watchdog shuts those sockets down when the time is up. A blocked reader then sees the
end of the stream; ``fired`` tells the transport that the call did not end by itself (a cut
header drip can even parse as a short, complete answer, which must not be believed).

Nested deadlines never extend the outer one: a token request made during a call shares what
is left of the call's time (the outer deadline itself, when it ends first). The watchdog is
one daemon thread per process, started on first use, holding a heap of pending deadlines; its
only work is ``shutdown()``, done under its lock.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any


class Deadline:
    __slots__ = ("at", "done", "fired", "seconds", "sockets")

    def __init__(self, at: float, seconds: float) -> None:
        self.at = at
        self.seconds = seconds  # as configured, for messages
        self.fired = False
        self.done = False
        self.sockets: dict[Any, socket.socket] = {}  # owner (a connection) -> its socket

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.fired or self.remaining() <= 0


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "api_client_deadline", default=None
)


def current() -> Deadline | None:
    return _current.get()


class _Watchdog:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self.lock:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="api-deadline", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:  # sooner than the one the watchdog waits for
                self.lock.notify()

    def _run(self) -> None:
        with self.lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self.lock.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self.lock.wait(wait)
                    continue
                deadline = heapq.heappop(self._heap)[2]
                deadline.fired = True
                for sock in deadline.sockets.values():
                    _cut(sock)
                deadline.sockets.clear()


_WATCHDOG = _Watchdog()


def _cut(sock: socket.socket) -> None:
    # socket.socket's own shutdown: SSLSocket.shutdown() would also drop its SSL object under
    # a thread still reading from it.
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def watch(owner: Any, sock: socket.socket | None) -> Deadline | None:
    """Cut ``sock`` at the current deadline (if any) until ``unwatch(owner)``."""
    deadline = _current.get()
    if deadline is None or sock is None:
        return deadline
    with _WATCHDOG.lock:
        if deadline.fired:
            _cut(sock)
        else:
            deadline.sockets[owner] = sock
    return deadline


def unwatch(owner: Any, deadline: Deadline | None) -> None:
    if deadline is not None:
        with _WATCHDOG.lock:
            deadline.sockets.pop(owner, None)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run the block with at most ``seconds`` (or what an outer deadline leaves) to finish."""
    outer = _current.get()
    at = time.monotonic() + seconds
    if outer is not None and outer.at <= at:  # the outer one ends first: it is this one too
        yield outer
        return
    current = Deadline(at, seconds)
    token = _current.set(current)
    _WATCHDOG.add(current)
    try:
        yield current
    finally:
        _current.reset(token)
        with _WATCHDOG.lock:
            current.done = True
            current.sockets.clear()

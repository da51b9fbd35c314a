"""Waiting for something that happens in another thread or process, with a bound."""

import threading
import time
from collections.abc import Callable

from api_client.pool import IDLE_SECONDS
from sandbox import stats


def settled[T](measure: Callable[[], T], expected: T, timeout: float = 10.0) -> T:
    """``measure()`` once it equals ``expected``, or its last value after ``timeout`` seconds.

    Not a timing threshold: the caller asserts on the value, however long it took.
    """
    deadline = time.monotonic() + timeout
    value = measure()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = measure()
    return value


def sandbox_requests_once_answered(expected: int) -> dict:
    """The live sandbox's request counts, once it has answered ``expected`` requests.

    A call that timed out leaves a sandbox thread sleeping out its delay; waiting for it keeps
    its answer from being counted in the next test's numbers.
    """
    settled(lambda: stats.snapshot()["requests"]["total"] >= expected, True)
    return stats.snapshot()["requests"]


def worker_threads_left() -> list[threading.Thread]:
    """The worker pool's threads still alive once they have had time to go idle and end
    (they stay ``api_client.pool.IDLE_SECONDS`` for the next batch)."""

    def alive() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("api-worker")]

    return settled(alive, [], timeout=IDLE_SECONDS + 5)

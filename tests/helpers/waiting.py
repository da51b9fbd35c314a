"""Waiting for something that happens in another thread or process, with a bound."""

import time
from collections.abc import Callable

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

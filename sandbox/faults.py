"""Latency and fault injection driven by query parameters.

``delay``, ``status``, ``retry_after``, ``fail_first`` + ``key`` and ``fail_rate`` let a client's
tests ask the sandbox for a slow answer, an error, or "503 twice, then the real answer".
When ``fail_first`` or ``fail_rate`` is given without ``status``, the injected status is 503;
when both are given, a request is failed only if both say so.

``fail_first`` counts per key in this process's memory (under a lock), not in the database:
it only has to be consistent for a single test talking to a single process, and a write per
request would contend with the client's own writes on SQLite.
"""

import math
import random
import threading
import time
from dataclasses import dataclass

from django.http import HttpResponse, QueryDict

from sandbox.responses import json_response

MAX_DELAY = 60.0
DEFAULT_FAIL_STATUS = 503
MAX_KEYS = 10_000
MAX_RETRY_AFTER_LENGTH = 100

_lock = threading.Lock()
_seen_by_key: dict[str, int] = {}
# Not for security; a module-level instance so tests could seed or stub it.
_random = random.Random()  # noqa: S311


class FaultParameterError(ValueError):
    """A fault-injection query parameter has a bad value; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class FaultPlan:
    delay: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    fail_first: int | None = None
    key: str | None = None
    fail_rate: float | None = None

    @property
    def injects(self) -> bool:
        return self.status is not None or self.fail_first is not None or self.fail_rate is not None


def parse(query: QueryDict) -> FaultPlan:
    """Read the fault parameters from a query string; raise ``FaultParameterError`` if bad."""
    delay = _number(query, "delay", float, 0.0, MAX_DELAY)
    status = _number(query, "status", int, 100, 599)
    fail_first = _number(query, "fail_first", int, 0, None)
    fail_rate = _number(query, "fail_rate", float, 0.0, 1.0)

    key = query.get("key")
    if fail_first is not None and not key:
        raise FaultParameterError("key", "fail_first needs a non-empty key parameter.")

    retry_after = query.get("retry_after")
    if retry_after is not None and not (
        0 < len(retry_after) <= MAX_RETRY_AFTER_LENGTH
        and retry_after.isascii()
        and retry_after.isprintable()
    ):
        raise FaultParameterError(
            "retry_after",
            f"retry_after must be 1 to {MAX_RETRY_AFTER_LENGTH} printable ASCII characters, "
            "such as 2 or an HTTP date.",
        )

    return FaultPlan(
        delay=delay or 0.0,
        status=status,
        retry_after=retry_after,
        fail_first=fail_first,
        key=key,
        fail_rate=fail_rate,
    )


def _number[T: (int, float)](
    query: QueryDict, name: str, kind: type[T], minimum: T, maximum: T | None
) -> T | None:
    raw = query.get(name)
    if raw is None:
        return None
    bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
    message = f"{name} must be {'an integer' if kind is int else 'a number'} {bounds}; got {raw!r}."
    try:
        value = kind(raw)
    except ValueError:
        raise FaultParameterError(name, message) from None
    if (isinstance(value, float) and not math.isfinite(value)) or value < minimum:
        raise FaultParameterError(name, message)
    if maximum is not None and value > maximum:
        raise FaultParameterError(name, message)
    return value


def apply(plan: FaultPlan) -> HttpResponse | None:
    """Sleep if asked, then return the injected response, or None for the real one."""
    if plan.delay > 0:
        time.sleep(plan.delay)
    if not plan.injects or not _should_fail(plan):
        return None
    status = plan.status if plan.status is not None else DEFAULT_FAIL_STATUS
    headers = {"Retry-After": plan.retry_after} if plan.retry_after is not None else None
    return json_response({"error": "injected", "status": status}, status=status, headers=headers)


def _should_fail(plan: FaultPlan) -> bool:
    if plan.fail_first is not None and not _within_first(plan.key or "", plan.fail_first):
        return False
    if plan.fail_rate is not None:
        with _lock:
            roll = _random.random()
        return roll < plan.fail_rate
    return True


def _within_first(key: str, n: int) -> bool:
    with _lock:
        seen = _seen_by_key.get(key, 0)
        if key not in _seen_by_key and len(_seen_by_key) >= MAX_KEYS:
            del _seen_by_key[next(iter(_seen_by_key))]  # forget the oldest key
        _seen_by_key[key] = seen + 1
    return seen < n


def reset() -> None:
    """Forget every ``fail_first`` key."""
    with _lock:
        _seen_by_key.clear()

"""Counters that tests (and the ``/sandbox/stats`` endpoint) read.

Requests are counted in memory, per process, under a lock: cheap, and a test talking to one
process gets exact numbers (the snapshot carries the pid to make that visible). Grants are
counted from the database, so the numbers are right however many processes serve the sandbox.
"""

import os
import threading
from collections import Counter

from django.db.models import Count

from sandbox import faults
from sandbox.models import Grant, GrantType

_lock = threading.Lock()
_by_status: Counter[int] = Counter()


def record_request(status: int) -> None:
    with _lock:
        _by_status[status] += 1


def grant_count(grant_type: str | None = None) -> int:
    """Grants issued (all processes), optionally of one type such as ``"refresh_token"``."""
    return Grant.objects.of_type(grant_type).count()


def request_counts() -> dict:
    with _lock:
        by_status = dict(_by_status)
    return {
        "total": sum(by_status.values()),
        "by_status": {str(status): n for status, n in sorted(by_status.items())},
    }


def grant_counts() -> dict[str, int]:
    counts = dict.fromkeys(GrantType.values, 0)
    for row in Grant.objects.order_by().values("grant_type").annotate(n=Count("id")):
        counts[row["grant_type"]] = row["n"]
    counts["total"] = sum(counts.values())
    return counts


def snapshot() -> dict:
    """What ``GET /sandbox/stats`` returns: ``{"grants", "requests", "pid"}``."""
    return {"grants": grant_counts(), "requests": request_counts(), "pid": os.getpid()}


def reset() -> None:
    """Clear this process's request counters and ``fail_first`` keys (grant rows stay)."""
    with _lock:
        _by_status.clear()
    faults.reset()

"""A batch answered as NDJSON: one line per finished item as it finishes, then a summary line.

The body is produced while the server writes it, after the view has returned. Two things
follow. The lines are generated inside a copy of the view's ``contextvars`` context, so the
calls still carry the request id of the page that started them. And the batch stops when
the browser goes away: closing the body closes ``iter_many``, which starts no new calls and
joins its workers (their database connections are theirs to close, see ``api_client.pool``).
"""

import contextvars
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from api_client.client import ApiClient
from api_client.exceptions import ApiError
from api_client.messages import BatchResult, Call
from api_client.metrics import percentile

logger = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
MAX_BINS = 20


def item_line(result: BatchResult) -> dict[str, Any]:
    error = None
    if isinstance(result.error, ApiError):
        error = {"code": result.error.code, "message": result.error.message}
    elif result.error is not None:  # a bug, logged by iter_many; its text stays in the log
        error = {
            "code": result.outcome,
            "message": f"Unexpected {type(result.error).__name__}; see the server log.",
        }
    duration = result.duration_ms
    return {
        "index": result.index,
        "status": result.status,
        "ok": result.ok,
        "duration_ms": round(duration, 1) if duration is not None else None,
        "exchange_id": result.exchange_id,
        "error": error,
    }


def histogram(ordered: Sequence[float]) -> dict[str, list[float] | list[int]]:
    """Equal-width bins from the fastest to the slowest call: ``edges`` has one more entry."""
    low, high = ordered[0], ordered[-1]
    bins = max(1, min(MAX_BINS, round(math.sqrt(len(ordered)))))
    if high == low:
        bins = 1
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in ordered:
        counts[min(bins - 1, int((value - low) / width))] += 1
    edges = [round(low + width * n, 1) for n in range(bins + 1)]
    return {"edges": edges, "counts": counts}


@dataclass
class BatchSummary:
    total: int
    concurrency: int
    batch_id: str
    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    ok: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_error: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    aborted: str | None = None

    def add(self, result: BatchResult) -> None:
        self.done += 1
        self.ok += result.ok
        if result.status is not None:
            self.by_status[str(result.status)] += 1
        if result.error is not None:
            self.by_error[result.outcome] += 1
        if result.duration_ms is not None:
            self.durations.append(round(result.duration_ms, 1))

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.durations)
        latency = None
        if ordered:
            latency = {
                "min": ordered[0],
                "p50": percentile(ordered, 50),
                "p95": percentile(ordered, 95),
                "max": ordered[-1],
                "mean": round(sum(ordered) / len(ordered), 1),
            }
        return {
            "batch_id": self.batch_id,
            "total": self.total,
            "done": self.done,
            "ok": self.ok,
            "failed": self.done - self.ok,
            "errors": sum(self.by_error.values()),
            "by_status": dict(sorted(self.by_status.items())),
            "by_error": dict(sorted(self.by_error.items())),
            "concurrency": self.concurrency,
            "elapsed_ms": round((time.perf_counter() - self.started) * 1000, 1),
            "latency_ms": latency,
            "histogram": histogram(ordered) if ordered else None,
            "aborted": self.aborted,
            "exchanges_url": reverse("admin:api_client_exchange_changelist")
            + "?"
            + urlencode({"batch_id": self.batch_id}),
        }


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def stream_batch(
    client: ApiClient, calls: list[Call], *, concurrency: int, batch_id: str
) -> Iterator[bytes]:
    """NDJSON lines: each finished item, then ``{"summary": {...}}``."""
    summary = BatchSummary(total=len(calls), concurrency=concurrency, batch_id=batch_id)
    try:
        with closing(
            client.iter_many(calls, concurrency=concurrency, batch_id=batch_id)
        ) as results:
            for result in results:
                summary.add(result)
                yield _encode(item_line(result))
    except Exception:
        logger.exception(
            "Batch %s stopped after %d of %d items", batch_id, summary.done, len(calls)
        )
        summary.aborted = "The batch stopped early because of a server error; see the server log."
    yield _encode({"summary": summary.as_dict()})


def iterate_in[T](context: contextvars.Context, iterator: Iterator[T]) -> Iterator[T]:
    """Step ``iterator`` inside ``context`` (see the module docstring)."""
    try:
        while True:
            try:
                item = context.run(next, iterator)
            except StopIteration:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            context.run(close)

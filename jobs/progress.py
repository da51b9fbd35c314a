"""What a job has done so far, and its results: the one description every place shows (the
console's JSON, the admin, ``show_job``), and the results streamed as CSV or JSON Lines.

Counts come from the database in a few grouped queries (by state, by status), whatever the
job's size; the latency histogram is read from the items' durations in one ordered pass over
the answered ones' ``duration_ms`` (at most ``HISTOGRAM_SAMPLE`` of them, evenly spaced).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, Max, Min
from django.utils import timezone

from api_client.streaming import csv_lines, jsonl_lines

from .models import Item, Job
from .workers import no_worker_warning

HISTOGRAM_BINS = 20
HISTOGRAM_SAMPLE = 10_000
RESULT_FIELDS = ("index", "method", "path", "state", "status", "duration_ms", "sends",
                 "error_code", "error", "exchange_id", "finished_at")  # fmt: skip
ORDERINGS = {"index": "index", "status": "status", "duration": "duration_ms"}


def describe(job: Job) -> dict[str, Any]:
    """The job and its progress, for people and scripts alike (JSON-ready)."""
    counts = job.counts()
    finished = sum(counts[state] for state in Item.FINISHED)
    by_status = dict(
        job.items.exclude(status=None)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    timing = job.items.filter(state=Item.State.ANSWERED).aggregate(
        first=Min("finished_at"), last=Max("finished_at"), mean=Avg("duration_ms")
    )
    rate = _rate(job, finished, timing["first"], timing["last"])
    left = counts["planned"] + counts["leased"]
    failing = (
        counts["failed"]
        + counts["unknown"]
        + sum(n for status, n in by_status.items() if status >= 400)
    )
    return {
        "key": job.key,
        "id": job.pk,
        "name": job.name,
        "state": job.state,
        "state_label": job.get_state_display(),
        "origin": job.origin,
        "created_by": job.created_by,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "concurrency": job.concurrency,
        "idempotency_header": job.idempotency_header,
        "total": job.total,
        "done": finished,
        "counts": counts,
        "by_status": {str(status): n for status, n in by_status.items()},
        "failing": failing,  # the progress bar's colour says whether calls fail
        "calls_per_second": round(rate, 2) if rate else None,
        "eta_seconds": round(left / rate) if rate and left and job.active else None,
        "mean_ms": round(timing["mean"], 1) if timing["mean"] is not None else None,
        "histogram": histogram(job),
        "warning": no_worker_warning() if job.state == Job.State.RUNNING and left else "",
    }


def _rate(job: Job, finished: int, first: datetime | None, last: datetime | None) -> float:
    start = job.started_at or first
    end = job.finished_at or (timezone.now() if job.active else last)
    if not start or not end or not finished:
        return 0.0
    return finished / max((end - start).total_seconds(), 0.001)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def histogram(job: Job) -> dict[str, list[float] | list[int]] | None:
    """Equal-width bins of the answered calls' durations: ``edges`` has one more entry."""
    answered = job.items.filter(state=Item.State.ANSWERED).exclude(duration_ms=None)
    count = answered.count()
    if not count:
        return None
    step = max(1, count // HISTOGRAM_SAMPLE)
    durations = list(answered.order_by("duration_ms").values_list("duration_ms", flat=True))[::step]
    low, high = durations[0], durations[-1]
    bins = 1 if high == low else max(1, min(HISTOGRAM_BINS, round(math.sqrt(len(durations)))))
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in durations:
        counts[min(bins - 1, int((value - low) / width))] += step
    return {"edges": [round(low + width * n, 1) for n in range(bins + 1)], "counts": counts}


# --- results ---------------------------------------------------------------------------------


def results(job: Job, order: str = "index") -> Iterator[dict[str, Any]]:
    """Every item's result, in chunks (a job of 100,000 items holds one chunk in memory)."""
    field = ORDERINGS.get(order.lstrip("-"), "index")
    ordering = ("-" if order.startswith("-") else "") + field
    for item in job.items.only(*RESULT_FIELDS, "job").order_by(ordering, "index").iterator(2000):
        yield result_of(item)


def result_of(item: Item) -> dict[str, Any]:
    row = {name: getattr(item, name) for name in RESULT_FIELDS}
    row["finished_at"] = _iso(item.finished_at)
    row["duration_ms"] = round(item.duration_ms, 1) if item.duration_ms is not None else None
    return row


def iter_jsonl(job: Job) -> Iterator[str]:
    return jsonl_lines(results(job))


def iter_csv(job: Job) -> Iterator[str]:
    return csv_lines(RESULT_FIELDS, results(job))

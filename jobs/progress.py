"""What a job has done so far, and its results: the one description every place shows (the
console's JSON, the admin, ``show_job``), and the results streamed as CSV or JSON Lines.

Counts come from the database in a few grouped queries (by state, by status), whatever the
job's size; the latency histogram and percentiles are read in one ordered pass over the
answered items' ``duration_ms``: every one up to ``HISTOGRAM_SAMPLE``, past that a sample of
about that many chosen in the query by a scattering of the index (``_scattered``), so that a
job of a million calls is not sorted and read whole on every poll of its progress. A list of
jobs is described more cheaply (``summaries``): the counts by state of a whole page in one
grouped query.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, F, Max, Min, OrderBy, Value
from django.db.models.functions import Mod
from django.utils import timezone

from api_client.metrics import rank
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
    by_error = dict(
        job.items.filter(state__in=(Item.State.FAILED, Item.State.UNKNOWN))
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by("error_code")
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
    shape = latency(job)
    return {
        **_identity(job),
        "done": finished,
        "counts": counts,
        "by_status": {str(status): n for status, n in by_status.items()},
        "failing": failing,  # the progress bar's colour says whether calls fail
        "calls_per_second": round(rate, 2) if rate else None,
        "eta_seconds": round(left / rate) if rate and left and job.active else None,
        "mean_ms": round(timing["mean"], 1) if timing["mean"] is not None else None,
        "histogram": shape["histogram"],
        "warning": no_worker_warning() if job.state == Job.State.RUNNING and left else "",
        # Added for the console; the keys above are the ones ``show_job --json`` prints.
        "by_error": {code or "error": n for code, n in by_error.items()},
        "latency_ms": shape["percentiles"],
        "elapsed_ms": _elapsed_ms(job),
    }


def _identity(job: Job) -> dict[str, Any]:
    return {
        "key": job.key,
        "id": job.pk,
        "name": job.name,
        "connection": job.connection,
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
    }


def summaries(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """``describe`` without what costs a pass over each job's items: identity, ``done`` and
    ``counts``, for a whole list of jobs in one grouped query (an index-only count)."""
    found: dict[int, dict[str, int]] = {job.pk: {} for job in jobs}
    rows = (
        Item.objects.filter(job_id__in=list(found))
        .values_list("job_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for job_id, state, n in rows:
        found[job_id][state] = n
    described = []
    for job in jobs:
        counts = {str(state): found[job.pk].get(state, 0) for state in Item.State}
        done = sum(counts[state] for state in Item.FINISHED)
        described.append({**_identity(job), "done": done, "counts": counts})
    return described


def _rate(job: Job, finished: int, first: datetime | None, last: datetime | None) -> float:
    start = job.started_at or first
    end = job.finished_at or (timezone.now() if job.active else last)
    if not start or not end or not finished:
        return 0.0
    return finished / max((end - start).total_seconds(), 0.001)


def _elapsed_ms(job: Job) -> float | None:
    if not job.started_at:
        return None
    end = job.finished_at or timezone.now()
    return round(max((end - job.started_at).total_seconds(), 0.0) * 1000, 1)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def latency(job: Job) -> dict[str, Any]:
    """The answered calls' durations: ``histogram`` (as ``histogram`` returns it) and
    ``percentiles`` (``min``, ``p50``, ``p95``, ``max``, ``mean``; nearest rank, exact up to
    ``HISTOGRAM_SAMPLE`` calls, from a sample of about that many past that), or None for both."""
    answered = job.items.filter(state=Item.State.ANSWERED).exclude(duration_ms=None)
    count = answered.count()
    if not count:
        return {"histogram": None, "percentiles": None}
    step = max(1, math.ceil(count / HISTOGRAM_SAMPLE))
    if step > 1:
        answered = answered.alias(nth=Mod(_scattered("index"), Value(step))).filter(nth=0)
    ordered = answered.order_by("duration_ms").values_list("duration_ms", flat=True)
    durations = list(ordered.iterator(5000))
    if not durations:  # items answered between the count and the read: none are lost
        return {"histogram": None, "percentiles": None}
    mean = sum(durations) / len(durations)
    percentiles = {
        "min": round(durations[0], 1),
        "p50": round(durations[rank(len(durations), 50)], 1),
        "p95": round(durations[rank(len(durations), 95)], 1),
        "max": round(durations[-1], 1),
        "mean": round(mean, 1),
    }
    return {"histogram": _bins(durations, step), "percentiles": percentiles}


def _scattered(field: str) -> Mod:
    """``field`` (0, 1, 2, ...) mapped onto 0..10006 in a scattered order, so that every n-th
    of the mapped values is a sample that no period in the job (every tenth call a POST, say)
    lines up with. Small enough that the product fits a 32-bit integer."""
    return Mod(Mod(field, Value(10007)) * Value(7919), Value(10007))


def histogram(job: Job) -> dict[str, list[float] | list[int]] | None:
    """Equal-width bins of the answered calls' durations: ``edges`` has one more entry."""
    return latency(job)["histogram"]


def _bins(durations: list[float], step: int) -> dict[str, list[float] | list[int]]:
    low, high = durations[0], durations[-1]
    bins = 1 if high == low else max(1, min(HISTOGRAM_BINS, round(math.sqrt(len(durations)))))
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in durations:
        counts[min(bins - 1, int((value - low) / width))] += step
    return {"edges": [round(low + width * n, 1) for n in range(bins + 1)], "counts": counts}


# --- results ---------------------------------------------------------------------------------


def ordering(order: str = "index") -> list[OrderBy]:
    """``index``, ``status`` or ``duration`` (``-`` first: descending); items without a value
    come last either way (SQLite and PostgreSQL place NULLs differently by default), ties by
    index."""
    name = ORDERINGS.get(order.lstrip("-"), "index")
    descending = order.startswith("-")
    first = F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True)
    return [first, F("index").asc()]


def results(job: Job, order: str = "index", states: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Every item's result (or those in ``states``), in chunks: a job of 100,000 items holds
    one chunk in memory."""
    items = job.items.only(*RESULT_FIELDS, "job").order_by(*ordering(order))
    if states:
        items = items.filter(state__in=states)
    for item in items.iterator(2000):
        yield result_of(item)


def result_of(item: Item) -> dict[str, Any]:
    row = {name: getattr(item, name) for name in RESULT_FIELDS}
    row["finished_at"] = _iso(item.finished_at)
    row["duration_ms"] = round(item.duration_ms, 1) if item.duration_ms is not None else None
    return row


def iter_jsonl(job: Job, order: str = "index", states: Sequence[str] = ()) -> Iterator[str]:
    return jsonl_lines(results(job, order, states))


def iter_csv(job: Job, order: str = "index", states: Sequence[str] = ()) -> Iterator[str]:
    return csv_lines(RESULT_FIELDS, results(job, order, states))

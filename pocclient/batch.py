"""A job's progress as NDJSON: one line per finished item as it finishes, then a summary line.

``POST /api/batch`` makes a job and answers with this stream. The lines are read from the
database, not from the calls: the job's workers (``manage.py db_worker``, or the web
process's own) send the calls and write their results, and this polls for items finished
since it last looked. A client that goes away closes only the stream; the job goes on, and
``GET /api/jobs/<key>`` follows it.

Polling reads the items finished since the latest one seen, and once a second since shortly
before it (``OVERLAP``: a worker's results are committed a little after the time they carry);
a bitmap of the items already written keeps each to one line, and whatever was committed
later still is written by the last pass, once the job has ended. Memory is a bit per item,
and the rows of one look.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import OperationalError
from django.db.models import Count
from django.urls import reverse

from api_client.conf import api_settings
from jobs.conf import job_settings
from jobs.models import Item, Job
from jobs.progress import describe
from jobs.workers import no_worker_warning

from .payloads import job_urls

logger = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
POLL_MIN, POLL_MAX = 0.1, 1.0  # seconds between looks: short while items come, then longer
DATABASE_PATIENCE = 30  # looks in a row that may fail (the database busy or restarting)
OVERLAP = timedelta(seconds=2)
LOOK_BACK_EVERY = 1.0  # seconds
LINE_FIELDS = ("index", "state", "status", "duration_ms", "exchange_id", "error_code", "error")
CANCELLED = {"code": "cancelled", "message": "The job was cancelled before this call was sent."}


def item_line(row: dict[str, Any]) -> dict[str, Any]:
    """An item's line: its place in the batch, status, latency, exchange and error."""
    status, state = row["status"], row["state"]
    answered = state == Item.State.ANSWERED
    error = None
    if state == Item.State.CANCELLED:
        error = CANCELLED
    elif not answered:
        error = {"code": row["error_code"] or state, "message": row["error"]}
    duration = row["duration_ms"]
    return {
        "index": row["index"],
        "status": status if answered else None,
        "ok": answered and status is not None and status < 400,
        "duration_ms": round(duration, 1) if duration is not None and answered else None,
        "exchange_id": row["exchange_id"],
        "error": error,
    }


def summary(job: Job, *, aborted: str | None = None) -> dict[str, Any]:
    """The last line: the batch's totals as they always were, and the job they come from."""
    job.refresh_from_db()
    progress = describe(job)
    counts = progress["counts"]
    ok = job.items.filter(state=Item.State.ANSWERED, status__lt=400).count()
    by_status = dict(
        job.items.filter(state=Item.State.ANSWERED)
        .exclude(status=None)
        .values_list("status")
        .order_by("status")
        .annotate(n=Count("id"))
    )
    return {
        "batch_id": job.key,  # the exchanges of the job's calls carry it
        "job": job.key,
        "job_id": job.pk,
        "state": job.state,
        "total": job.total,
        "done": progress["done"],
        "ok": ok,
        "failed": progress["done"] - ok - counts["cancelled"],
        "cancelled": counts["cancelled"],
        "errors": counts["failed"] + counts["unknown"],
        "by_status": {str(status): n for status, n in by_status.items()},
        "by_error": progress["by_error"],
        "counts": counts,
        "concurrency": job.concurrency,
        "elapsed_ms": progress["elapsed_ms"],
        "latency_ms": progress["latency_ms"],
        "histogram": progress["histogram"],
        "aborted": aborted,
        **job_urls(job),
    }


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


class Follow:
    """Steps through a job's finished items, each once (see the module docstring)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.written = bytearray((job.total + 7) // 8)
        self.count = 0
        self.latest = None
        self.looked_back = time.monotonic()

    def _new(self, rows: Any) -> Iterator[dict[str, Any]]:
        for row in rows:
            index = row["index"]
            byte, bit = divmod(index, 8)
            if byte >= len(self.written) or self.written[byte] & (1 << bit):
                continue
            self.written[byte] |= 1 << bit
            self.count += 1
            yield row

    def recent(self) -> list[dict[str, Any]]:
        """Items finished since shortly before the latest seen, in the order they finished."""
        rows = self.job.items.filter(state__in=Item.FINISHED)
        if self.latest is not None:
            since = self.latest
            if time.monotonic() - self.looked_back >= LOOK_BACK_EVERY:
                since, self.looked_back = since - OVERLAP, time.monotonic()
            rows = rows.filter(finished_at__gte=since)
        found = list(rows.order_by("finished_at", "index").values(*LINE_FIELDS, "finished_at"))
        if found:
            self.latest = max(self.latest or found[-1]["finished_at"], found[-1]["finished_at"])
        return list(self._new(found))

    def rest(self) -> Iterator[dict[str, Any]]:
        """Every finished item not written yet (the last pass), in index order."""
        finished = self.job.items.filter(state__in=Item.FINISHED)
        if finished.count() <= self.count:
            return iter(())
        return self._new(finished.order_by("index").values(*LINE_FIELDS).iterator(2000))


def stream_job(job: Job) -> Iterator[bytes]:
    """NDJSON lines: each finished item of ``job``, then ``{"summary": {...}}``.

    The stream ends when the job has ended (finished or cancelled, and the calls that were
    in flight have come back), or, with ``aborted`` saying why, when no worker has been seen
    and nothing has finished for a while: the job waits in the database, and runs once a
    worker starts."""
    follow = Follow(job)
    follow_at = reverse("api-job", args=[job.key])
    aborted = None
    wait = POLL_MIN
    quiet_since = time.monotonic()
    silent_after = job_settings().silent_after
    in_flight_for = api_settings().DEADLINE + job_settings().LEASE_SLACK
    ended_at = None
    failures = 0
    try:
        while True:
            try:
                state = Job.objects.filter(pk=job.pk).values_list("state", flat=True).first()
                found = follow.recent()
            except OperationalError:
                failures += 1
                if failures > DATABASE_PATIENCE:
                    raise
                logger.warning("Job %s: the database did not answer; looking again", job.key)
                time.sleep(POLL_MAX)
                continue
            failures = 0
            for row in found:
                yield _encode(item_line(row))
            now = time.monotonic()
            if found:
                quiet_since, wait = now, POLL_MIN
            else:
                wait = min(wait * 2, POLL_MAX)
            if state is None:
                aborted = f"Job {job.key} was deleted while it ran."
                break
            if state not in (Job.State.RUNNING, Job.State.PAUSED, Job.State.PLANNING):
                # Ended; calls in flight when it was cancelled still come back (or their
                # leases run out).
                ended_at = ended_at or now
                in_flight = job.items.filter(state=Item.State.LEASED).exists()
                if not in_flight or now - ended_at > in_flight_for:
                    break
            elif now - quiet_since > silent_after and (warning := no_worker_warning()):
                aborted = f"{warning} The job is kept, and runs then; follow it at {follow_at}."
                break
            time.sleep(wait)
        for row in follow.rest():
            yield _encode(item_line(row))
    except Exception:
        logger.exception("The stream of job %s stopped after %d lines", job.key, follow.count)
        aborted = (
            "The answer stopped early because of a server error (see the server log); the "
            f"job goes on: follow it at {follow_at}."
        )
    yield _encode({"summary": summary(job, aborted=aborted)})

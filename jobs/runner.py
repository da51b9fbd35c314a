"""Running a job in one worker: items claimed as places free up, sent on the process's pool,
and written back in batches.

A runner holds at most its share of places: it claims items (leases them) only while fewer
than the job's ``concurrency`` are leased across all workers, so several workers together
never have more calls in flight than that. Every ``FLUSH_SECONDS`` it writes what has come
back and claims more, in one short transaction, and renews the leases of what it holds; a
crashed runner's leases run out after ``lease_seconds`` and ``jobs.recovery`` decides what
became of its items from the exchange log.

What a result makes of an item:
- an answer (any status but 429): answered;
- a 429, or a rate limit or pause longer than the call could wait: planned again, not before
  the provider allows (``sends`` counts it; ``MAX_RATE_LIMITED`` such returns, then failed);
- a call that surely did not reach the API (refused, no token, not recorded first): failed,
  or (not recorded) planned again shortly;
- a call that may have reached it and broke off: failed when sending it again is safe (an
  idempotent method, or an idempotency key), unknown otherwise, to be re-sent only when a
  person says so.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, transaction
from django.utils import timezone

from api_client.client import ApiClient, get_client
from api_client.connections import UnknownConnectionError
from api_client.context import actor_scope
from api_client.exceptions import ApiError, LedgerError, RetryLaterError
from api_client.messages import ApiRequest, ApiResponse, Call
from api_client.models.prepared import update_by_pk
from api_client.pool import POOL
from api_client.ratelimit import pause_asked
from api_client.validation import IDEMPOTENT_METHODS

from .conf import job_settings
from .models import Item, Job
from .recovery import reap

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.05
MAX_RATE_LIMITED = 50
REAP_SECONDS = 1.0  # how often a runner settles the items of runners whose leases ran out
IDLE_LIMIT = 5.0  # seconds a runner waits with nothing to send before it lets the job be


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runner:
    """Runs one job's items until none is left for it to claim (or the job stops)."""

    def __init__(self, job_id: int, *, client: ApiClient | None = None, owner: str = "") -> None:
        self.job_id = job_id
        self._client = client
        self.owner = owner or worker_name()
        self.held: dict[int, Item] = {}  # leased by this runner, not yet written back
        self.done: list[tuple[Item, dict[str, Any]]] = []
        self.sent = 0
        self.stopping = threading.Event()  # set from another thread: leave the job now
        self._reap_at = 0.0

    def run(self) -> dict[str, Any]:
        job = Job.objects.get(pk=self.job_id)
        if job.state != Job.State.RUNNING:
            return {"job": job.key, "sent": 0, "state": job.state}
        self.job = job
        if not self._connect():
            return {"job": job.key, "sent": 0, "state": Job.State.PAUSED}
        self.lease_seconds = self.client.config.DEADLINE + job_settings().LEASE_SLACK
        self.capacity = self.client.config.MAX_WORKERS  # this process's share, at most
        stream = POOL.stream(self._send, concurrency=self.capacity, size=self.capacity)
        idle_since = time.monotonic()
        renewed = time.monotonic()
        try:
            while not self.stopping.is_set():
                self._connect()  # an edit or a switch-off in the admin reaches a running job
                state = self._flush_and_claim(stream)
                if self.held:
                    idle_since = time.monotonic()
                elif state != Job.State.RUNNING or self._ended():
                    break
                elif time.monotonic() - idle_since > IDLE_LIMIT:
                    break  # others hold what is left; recovery wakes a runner if they die
                if time.monotonic() - renewed > self.lease_seconds / 3:
                    self._renew()
                    renewed = time.monotonic()
                self._collect(stream, FLUSH_SECONDS if self.held else 0.5)
        finally:
            self._stop(stream)
        return {"job": self.job.key, "sent": self.sent}

    # --- the loop ------------------------------------------------------------------------

    def _connect(self) -> bool:
        """The client of the job's connection, as it is now (``settings_for`` reads it again
        every few seconds); a connection switched off or broken pauses the job, saying why:
        calls in flight finish, no new one starts."""
        if self._client is not None:
            self.client = self._client
            return True
        try:
            self.client = get_client(self.job.connection)
        except UnknownConnectionError as exc:
            Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(
                state=Job.State.PAUSED, error=exc.message
            )
            return False
        return True

    def _collect(self, stream: Any, wait: float) -> None:
        """Take what has come back: wait up to ``wait`` for the first, then all that is ready."""
        deadline = time.monotonic() + wait
        while True:
            try:
                item_id, outcome = stream.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            item = self.held.pop(item_id)
            self.done.append((item, self._result(item, outcome)))
            self.sent += 1
            if len(self.done) >= 256:
                return

    def _flush_and_claim(self, stream: Any) -> str:
        """Write back what came back, and claim what places allow; the job's state."""
        close_old_connections()
        now = timezone.now()
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job_id)
            self._write(self.done, now)
            self.done = []
            claimed: list[Item] = []
            room = self.capacity - len(self.held)
            if job.state == Job.State.RUNNING and room > 0:
                if time.monotonic() >= self._reap_at:  # a lease lasts seconds: no need sooner
                    reap(job, now)
                    self._reap_at = time.monotonic() + REAP_SECONDS
                leased = job.items.filter(state=Item.State.LEASED).count()
                places = min(room, job.concurrency - leased)
                if places > 0:
                    # Read, then lease what was read: the job's row lock (PostgreSQL) or the
                    # IMMEDIATE transaction (SQLite) keeps other runners out in between.
                    claimed = list(job.items.claimable(now).order_by("index")[:places])
                    lease = {
                        "state": Item.State.LEASED,
                        "lease_owner": self.owner,
                        "lease_until": now + timedelta(seconds=self.lease_seconds),
                    }
                    if claimed:
                        Item.objects.filter(id__in=[item.pk for item in claimed]).update(**lease)
                        for item in claimed:
                            for name, value in lease.items():
                                setattr(item, name, value)
            self.job = job
        for item in claimed:
            item.job = job
            self.held[item.pk] = item
        if claimed:
            stream.put_all([(item.pk, item) for item in claimed])
        return job.state

    def _ended(self) -> bool:
        """Finish the job if nothing is left in it (by any runner); whether it ended."""
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job_id)
            if job.state != Job.State.RUNNING:
                return True
            left = job.items.filter(state__in=(Item.State.PLANNED, Item.State.LEASED)).exists()
            if not left:
                job.state, job.finished_at = Job.State.FINISHED, timezone.now()
                job.save(update_fields=["state", "finished_at"])
                logger.info("Job %s finished", job.key)
                return True
        return False

    def _renew(self) -> None:
        Item.objects.filter(
            job_id=self.job_id, state=Item.State.LEASED, lease_owner=self.owner
        ).update(lease_until=timezone.now() + timedelta(seconds=self.lease_seconds))

    def _stop(self, stream: Any) -> None:
        """Leave the job: what never started goes back (or, cancelled, is cancelled); what
        was running is waited for and written back."""
        left = stream.close()
        self._collect(stream, 0)
        back = Item.State.CANCELLED if self.job.state == Job.State.CANCELLED else Item.State.PLANNED
        with transaction.atomic():
            self._write(self.done, timezone.now())
            ids = [item_id for item_id, _ in left]
            Item.objects.filter(id__in=ids, lease_owner=self.owner).update(
                state=back, lease_owner="", lease_until=None
            )

    # --- one item ------------------------------------------------------------------------

    def _send(self, item: Item) -> ApiResponse:
        """Runs on the pool: the item's call, its exchange carrying the item's reference."""
        headers = dict(item.headers)
        if self.job.idempotency_header:
            headers[self.job.idempotency_header] = item.idempotency_key
        call = Call(
            ApiRequest(item.method, item.path),
            item.method,
            self.client.config.base_url + item.path.lstrip("/"),
            item.path,
            headers,
            item.body.encode() if item.body is not None else None,
        )
        with actor_scope(self.job.created_by):  # who made the job causes its calls
            return self.client.send(
                call, batch_id=self.job.key, wait=False, reference=item.reference
            )

    def _result(self, item: Item, outcome: Any) -> dict[str, Any]:
        """The fields an outcome gives the item (see the module docstring)."""
        sends = item.sends + 1
        if isinstance(outcome, ApiResponse):
            fields = {"exchange_id": outcome.exchange_id, "duration_ms": outcome.duration_ms}
            if outcome.status == 429 and sends < MAX_RATE_LIMITED:
                wait = pause_asked(429, outcome.headers)
                return {**fields, **_later(wait), "sends": sends, "status": 429}
            return {**fields, "state": Item.State.ANSWERED, "status": outcome.status,
                    "sends": sends, "error_code": "", "error": ""}  # fmt: skip
        error = outcome if isinstance(outcome, ApiError) else None
        exchange_id = getattr(outcome, "exchange_id", None)
        if isinstance(outcome, RetryLaterError) and sends < MAX_RATE_LIMITED:
            return {**_later(outcome.retry_after), "exchange_id": exchange_id, "sends": sends}
        if isinstance(outcome, LedgerError):
            return {**_later(1.0), "error_code": outcome.code, "error": outcome.message[:500]}
        if error is None:
            logger.error("Job %s item %d failed", self.job.key, item.index, exc_info=outcome)
            code, message = "internal_error", f"Unexpected {type(outcome).__name__}; see the log."
        else:
            code, message = error.code, error.message
        safe = item.method in IDEMPOTENT_METHODS or bool(self.job.idempotency_header)
        unknown = error is not None and error.reached is None and not safe
        return {
            "state": Item.State.UNKNOWN if unknown else Item.State.FAILED,
            "status": None,
            "exchange_id": exchange_id,
            "sends": sends if error is None or error.reached is not False else item.sends,
            "error_code": code[:40],
            "error": message[:500],
        }

    def _write(self, done: list[tuple[Item, dict[str, Any]]], now: Any) -> None:
        """Write back results of items this runner still holds (in the caller's transaction)."""
        if not done:
            return
        fields = ("state", "status", "duration_ms", "error_code", "error", "exchange_id",
                  "sends", "not_before", "finished_at", "lease_owner", "lease_until")  # fmt: skip
        items = []
        for item, values in done:
            values = {"not_before": None, **values}
            finished = values.get("state") in Item.FINISHED
            values.update(finished_at=now if finished else None, lease_owner="", lease_until=None)
            for name, value in values.items():
                setattr(item, name, value)
            items.append(item)
        owned = set(
            Item.objects.filter(
                id__in=[item.pk for item in items],
                lease_owner=self.owner,
                state=Item.State.LEASED,
            ).values_list("id", flat=True)
        )
        rows = [
            (item.pk, {n: getattr(item, n) for n in fields}) for item in items if item.pk in owned
        ]
        update_by_pk(Item, rows)


def _later(seconds: float) -> dict[str, Any]:
    return {
        "state": Item.State.PLANNED,
        "not_before": timezone.now() + timedelta(seconds=max(seconds, 0.05)),
    }

"""A job is a persisted plan of calls (its items), run by workers in the background.

Every item is written before the first is sent. An item is leased to one worker at a time
(``lease_owner``, ``lease_until``), as the token is; what a worker learns about a call it
writes back in batches. After a crash the exchange log decides what an item whose lease ran
out became (``jobs.recovery``): every call's exchange carries the item's ``reference``.

Planned = answered + failed + unknown + cancelled, once a job has ended; before that, the
rest are planned (waiting) or leased (taken by a worker, maybe in flight).
"""

import uuid
from typing import Any

from django.db import connections, models, transaction
from django.db.models import Count, Q
from django.utils import timezone


def new_key() -> str:
    return uuid.uuid4().hex


class Job(models.Model):
    class State(models.TextChoices):
        PLANNING = "planning", "being planned"
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        CANCELLED = "cancelled", "cancelled"
        FINISHED = "finished", "finished"
        FAILED = "failed", "planning failed"

    class Origin(models.TextChoices):
        CONSOLE = "console", "console"
        COMMAND = "command", "command"
        PYTHON = "python", "Python"

    key = models.CharField(max_length=32, unique=True, default=new_key)
    name = models.CharField(max_length=200, blank=True, help_text="Where its calls came from.")
    # The connection it sends with (a name, as on the exchanges: the job outlives it).
    connection = models.CharField(max_length=64, default="default")
    state = models.CharField(max_length=10, choices=State, default=State.PLANNING)
    origin = models.CharField(max_length=8, choices=Origin, default=Origin.PYTHON)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    concurrency = models.PositiveSmallIntegerField(default=4)
    idempotency_header = models.CharField(
        max_length=64, blank=True, help_text="Sent with each item's key, fixed at planning."
    )
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "-created_at"], name="job_state_idx")]

    def __str__(self) -> str:
        return f"job {self.key[:8]} ({self.total} calls, {self.get_state_display()})"

    @property
    def active(self) -> bool:
        return self.state in (self.State.RUNNING, self.State.PAUSED, self.State.PLANNING)

    def counts(self) -> dict[str, int]:
        """Items by state, every state present (zeros included)."""
        found = dict(self.items.values_list("state").annotate(n=Count("id")).order_by())
        return {str(state): found.get(state, 0) for state in Item.State}


class ItemQuerySet(models.QuerySet):
    def claimable(self, now=None) -> "ItemQuerySet":
        now = now or timezone.now()
        return self.filter(state=Item.State.PLANNED).filter(
            Q(not_before__isnull=True) | Q(not_before__lte=now)
        )

    def finished(self) -> "ItemQuerySet":
        return self.filter(state__in=Item.FINISHED)


class ItemManager(models.Manager.from_queryset(ItemQuerySet)):
    def plan_rows(self, job: "Job", rows: list[tuple[Any, ...]]) -> None:
        """Insert planned items, ``rows`` of ``PLANNED_COLUMNS`` values, in one prepared
        ``executemany``: ``bulk_create`` spends most of its time building an INSERT of many
        rows (and an instance per row) that costs more than writing them (BENCHMARKS.md)."""
        if not rows:
            return
        connection = connections[self.db]
        meta = self.model._meta
        headers = meta.get_field("headers")
        fixed = [
            (field, field.get_db_prep_save(field.get_default(), connection))
            for field in meta.local_concrete_fields
            if field.attname not in ("id", "job_id", *PLANNED_COLUMNS)
        ]
        quote = connection.ops.quote_name
        columns = ["job_id", *PLANNED_COLUMNS, *(field.column for field, _ in fixed)]
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(quote, columns))}) "  # noqa: S608 (names from the model)
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )
        constants = tuple(value for _, value in fixed)
        params = [
            (job.pk, index, method, path, headers.get_db_prep_save(h, connection), body, key,
             *constants)
            for index, method, path, h, body, key in rows
        ]  # fmt: skip
        # One transaction: in autocommit, sqlite3 commits each row of an executemany.
        with transaction.atomic(using=self.db), connection.cursor() as cursor:
            cursor.executemany(sql, params)


# What planning gives each item (``ItemManager.plan_rows``); every other column its default.
PLANNED_COLUMNS = ("index", "method", "path", "headers", "body", "idempotency_key")


class Item(models.Model):
    class State(models.TextChoices):
        PLANNED = "planned", "planned"
        LEASED = "leased", "taken by a worker"
        ANSWERED = "answered", "answered"
        FAILED = "failed", "failed"
        UNKNOWN = "unknown", "unknown"
        CANCELLED = "cancelled", "cancelled"

    FINISHED = (State.ANSWERED, State.FAILED, State.UNKNOWN, State.CANCELLED)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField()
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=4096, help_text="Below the base URL, query included.")
    headers = models.JSONField(default=dict, blank=True)
    # The JSON body, encoded; None (not "") when the call has none: "" is no JSON.
    body = models.TextField(null=True, blank=True)  # noqa: DJ001
    idempotency_key = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.PLANNED)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Rate-limited: later.")
    sends = models.PositiveSmallIntegerField(default=0, help_text="Times it was sent.")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # The exchange of its last call: api_client's table, joined by id without a constraint,
    # so that purging old exchanges costs no work here.
    exchange = models.ForeignKey(
        "api_client.Exchange",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ItemManager()

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="item_position"),
        ]
        indexes = [
            models.Index(fields=["job", "state", "index"], name="item_state_idx"),
            models.Index(fields=["job", "finished_at"], name="item_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path[:60]} (item {self.index} of {self.job_id})"

    @property
    def reference(self) -> str:
        """What its exchanges carry: the job's key and the item's place."""
        return reference_of(self.job.key if self.job_id else "", self.index)


def reference_of(job_key: str, index: int) -> str:
    return f"job:{job_key}:{index}"


class WorkerBeat(models.Model):
    """A worker that runs jobs (``manage.py db_worker``, or inside the web process), and when
    it was last seen: a job with no worker seen for a while says so."""

    worker_id = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    embedded = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"worker {self.worker_id} on {self.host} (pid {self.pid})"

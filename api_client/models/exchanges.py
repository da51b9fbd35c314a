"""The exchange log: one row per outbound call, and how the admin and console select rows."""

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, models
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.db.models.sql import InsertQuery
from django.utils import timezone

from .prepared import update_by_pk


class PrefixField(models.CharField):
    """The first ``max_length`` characters of another field, set whenever a row is saved or
    inserted (``save``, ``bulk_create`` and ``ExchangeManager.record`` all call ``pre_save``)."""

    def __init__(self, *args: Any, of: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.of = of

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, {**kwargs, "of": self.of}

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = (getattr(model_instance, self.of) or "")[: self.max_length]
        setattr(model_instance, self.attname, value)
        return value


def _read_barrier(alias: str) -> None:
    for barrier in READ_BARRIER:
        barrier(alias)


class StatusClass(models.IntegerChoices):
    """What the history, the admin and the summary group statuses by: the hundreds digit,
    0 for a call that got no answer. ``key`` is how a query string spells it (``4xx``)."""

    NONE = 0, "no response"
    INFORMATIONAL = 1, "1xx"
    SUCCESS = 2, "2xx"
    REDIRECTION = 3, "3xx"
    CLIENT_ERROR = 4, "4xx"
    SERVER_ERROR = 5, "5xx"

    @property
    def key(self) -> str:
        return "none" if self == StatusClass.NONE else str(self.label)

    @classmethod
    def from_key(cls, key: str) -> "StatusClass":
        return next(member for member in cls if member.key == key)

    def q(self) -> Q:
        if self == StatusClass.NONE:
            return Q(status__isnull=True)
        return Q(status__gte=self * 100, status__lt=self * 100 + 100)


# Failed: an error status, or no answer at all (a call still in progress is not failed yet).
ENDED_WITHOUT_ANSWER = Q(status__isnull=True) & ~Q(state="pending")
FAILED = Q(status__gte=400) | ENDED_WITHOUT_ANSWER
# Every ended call but a 2xx: the rows of the two partial indexes that serve the filters of
# failures and of one status class in date order (a healthy call, and any call in progress,
# costs neither). A query uses them only when its WHERE has this very term (SQLite matches
# terms, it does not reason about ranges), so each of those filters adds it (``_unusual``).
UNUSUAL = Q(status__lt=200) | Q(status__gte=300) | ENDED_WITHOUT_ANSWER
# The hundreds digit, as an indexed expression. The divisor is written into the SQL, not
# bound: SQLite matches an expression index only to the same expression, constants included.
STATUS_CLASS = models.Func(
    models.F("status"), template="(%(expressions)s / 100)", output_field=models.IntegerField()
)
PATH_PREFIX = 200
PURGE_BATCH_SIZE = 2000  # the first batch; the next are sized by time
# A deleted row costs an entry in each index, most of them in random places (request id,
# path, duration): a batch of 500 rewrites a page per row and index, one of 30,000 shares
# them. Measured on a million rows: 50 ms batches purge 6,400 rows/s, 0.5 s 13,900, 1 s
# 16,900 (BENCHMARKS.md). Half a second is how long a call may wait for SQLite's lock.
PURGE_SECONDS_PER_BATCH = 0.5
PURGE_MAX_BATCH = 50_000


# Set by ``api_client.ledger``: called before a read of the log, so that a process reads its
# own calls as they ended (a single call returns before its completion is committed).
READ_BARRIER: list[Callable[[str], None]] = []


class ExchangeQuerySet(models.QuerySet):
    def _fetch_all(self) -> None:
        if self._result_cache is None:
            _read_barrier(self.db)
        super()._fetch_all()

    def count(self) -> int:
        _read_barrier(self.db)
        return super().count()

    def exists(self) -> bool:
        _read_barrier(self.db)
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        _read_barrier(self.db)
        return super().aggregate(*args, **kwargs)

    def failed(self) -> "ExchangeQuerySet":
        return self._unusual(FAILED)

    def succeeded(self) -> "ExchangeQuerySet":
        return self.filter(status__gte=200, status__lt=400)

    def in_status_class(self, status_class: int) -> "ExchangeQuerySet":
        """Exchanges whose status is ``status_class``xx (2 -> 200-299); 0 is "no response"
        (a call that ended without one: a call in progress is under the state filter)."""
        if status_class == StatusClass.SUCCESS:  # most rows: found walking the date index
            return self.filter(StatusClass.SUCCESS.q())
        digit = None if status_class == StatusClass.NONE else int(status_class)
        return self.alias(status_class=STATUS_CLASS)._unusual(Q(status_class=digit))

    def _unusual(self, condition: Q) -> "ExchangeQuerySet":
        """``condition``, which only rows outside 2xx meet, from the partial index of those."""
        return self.filter(UNUSUAL).filter(condition)

    def in_state(self, state: str) -> "ExchangeQuerySet":
        """Exchanges shown in ``state``: a pending row past its ``settle_by`` is unknown."""
        # Both are few among many rows: each from its partial index (ids first, so that the
        # planner does not walk the whole table in date order looking for them; one UNION, as
        # PostgreSQL would test each row against an OR of two subqueries: 318 ms at 1M).
        every = self.model._default_manager.using(self.db)
        pending = every.filter(state="pending")
        settled = pending.filter(settle_by__lt=timezone.now())
        if state == "unknown":
            unknown = every.filter(state="unknown")
            return self.filter(pk__in=unknown.values("pk").union(settled.values("pk")))
        if state == "pending":
            return self.filter(pk__in=pending.exclude(pk__in=settled.values("pk")).values("pk"))
        return self.filter(state=state)

    def path_starts_with(self, prefix: str, *, common: bool = False) -> "ExchangeQuerySet":
        """Exchanges whose path starts with ``prefix`` (case counts), from the path index.

        ``common``: the prefix matches many rows. SQLite (which keeps no statistics) would
        still read all of them from the path index and sort them by date; compared through an
        expression it cannot look up, the newest page is found by walking the date index.
        """
        start = prefix[:PATH_PREFIX]
        if connections[self.db].vendor == "postgresql":
            found = self.filter(path_prefix__startswith=start)  # LIKE, from pattern_ops
        else:  # SQLite's LIKE ignores case and its index; a range on the binary order does not
            column = "path_prefix"
            if common:
                found = self.alias(unindexed=Concat("path_prefix", Value("")))
                column = "unindexed"
            found = (found if common else self).filter(
                **{f"{column}__gte": start, f"{column}__lt": start + "\U0010ffff"}
            )
        return found.filter(path__startswith=prefix) if len(prefix) > PATH_PREFIX else found

    def older_than(self, days: float) -> "ExchangeQuerySet":
        return self.created_before(timezone.now() - timedelta(days=days))

    def created_before(self, cutoff: datetime) -> "ExchangeQuerySet":
        return self.filter(created_at__lt=cutoff)

    def purge(
        self,
        *,
        batch_size: int | None = None,
        pause: float | None = None,
        seconds_per_batch: float = PURGE_SECONDS_PER_BATCH,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete these exchanges, oldest first, in batches; returns how many went.

        Each batch is its own short transaction: one DELETE of the oldest ``size`` ids.
        Batches are sized by time, not rows: the next is made as large as fits in
        ``seconds_per_batch`` by the pace of the last (``batch_size`` fixes the size instead),
        so that the write lock (SQLite has one for the whole database) is never held for long
        however fast the disk. Between batches the lock is left to other writers for a
        quarter of the time the batch took (``pause`` fixes it instead).
        """
        ordered = self.order_by("created_at", "id")
        size, deleted = batch_size or PURGE_BATCH_SIZE, 0
        while True:
            started = time.perf_counter()
            oldest = ordered.values("id")[:size]
            count, _ = self.model.objects.filter(id__in=oldest).delete()
            if not count:
                break
            deleted += count
            took = time.perf_counter() - started
            if on_batch is not None:
                on_batch(deleted)
            if count < size and not ordered.exists():  # fewer: maybe others deleted some
                break
            if batch_size is None:
                pace = count / max(took, 1e-4)  # rows per second
                size = int(min(max(pace * seconds_per_batch, 100), PURGE_MAX_BATCH))
            wait = took / 4 if pause is None else pause
            if wait:
                time.sleep(wait)
        return deleted


class ExchangeManager(models.Manager.from_queryset(ExchangeQuerySet)):
    """Adds the writes of ``api_client.ledger``, their SQL compiled once per connection.

    ``record`` is one INSERT: ``Model.save()`` recompiles the same INSERT for every row, which
    costs more than executing it (see BENCHMARKS.md); ``record`` lets Django's own compiler
    write the SQL once per database alias, then only prepares the values, as ``save()`` does.
    ``complete`` is one prepared UPDATE for many rows (``executemany``). No signals are sent.
    """

    _insert_sql: dict[str, str] = {}

    def record(self, exchange: "Exchange") -> int:
        connection = connections[self.db]
        meta = self.model._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.pk and not f.generated]
        sql = self._insert_sql.get(connection.alias)
        if sql is None:
            sql = self._insert_sql[connection.alias] = self._compile_insert(connection, fields)
        values = [f.get_db_prep_save(f.pre_save(exchange, add=True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            if connection.features.can_return_columns_from_insert:
                pk = cursor.fetchone()[0]
            else:  # pragma: no cover (SQLite < 3.35)
                pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        exchange.pk = pk
        exchange._state.adding, exchange._state.db = False, connection.alias
        return pk

    def complete(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """Set each row's ``fields`` (the same names for every row), by primary key."""
        update_by_pk(self.model, rows, self.db)

    def _compile_insert(self, connection, fields: list) -> str:
        query = InsertQuery(self.model)
        query.insert_values(fields, [self.model()])
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = [self.model._meta.pk]
        [(sql, _)] = compiler.as_sql()
        return sql


class Exchange(models.Model):
    """One outbound HTTP call, as sent and as answered, with secrets redacted.

    Written before the request leaves (``state`` pending) and completed after
    (``api_client.ledger``): answered (a status came back), failed (the call did not reach the
    API, or was never sent), or unknown (it may have: the connection broke after sending, the
    deadline cut the answer, or the process died before it could record the end).
    """

    class Kind(models.TextChoices):
        API = "api", "API call"
        TOKEN = "token", "token request"

    class State(models.TextChoices):
        PENDING = "pending", "in progress"
        ANSWERED = "answered", "answered"
        FAILED = "failed", "failed"
        UNKNOWN = "unknown", "unknown"

    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=8, choices=State, default=State.ANSWERED)
    # A pending row whose settle_by has passed belongs to a process that died: unknown.
    settle_by = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(max_length=8, choices=Kind, default=Kind.API)
    # The connection's name (not a foreign key: the log outlives a connection).
    connection = models.CharField(max_length=64, default="default")
    method = models.CharField(max_length=10)
    url = models.CharField(max_length=4096)
    path = models.CharField(max_length=4096, help_text="Path and query below the base URL.")
    # The path's start, indexed for the admin's prefix search: a whole path could be too
    # long for a PostgreSQL index entry. (Not a GeneratedField: its system check would need
    # a database connection for every `manage.py check`.)
    path_prefix = PrefixField(of="path", max_length=PATH_PREFIX, blank=True, editable=False)
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    duration_ms = models.FloatField(default=0.0)
    attempts = models.PositiveSmallIntegerField(default=1)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    thread = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    batch_id = models.CharField(max_length=32, blank=True)
    # What the caller calls this call (a job's item), to find its exchange after a crash.
    reference = models.CharField(max_length=64, blank=True)
    actor = models.CharField(
        max_length=150, blank=True, help_text="Who caused the call: a user, or a command."
    )

    objects = ExchangeManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # refresh_from_db() and related lookups read through it: past the read barrier too.
        base_manager_name = "objects"
        permissions = [("send_request", "Can send requests to the API")]
        indexes = [
            models.Index(fields=["actor", "-created_at"], name="exchange_actor_idx"),
            models.Index(fields=["-created_at", "-id"], name="exchange_recent_idx"),
            # Failures and rare statuses, newest first (see UNUSUAL): no cost for a 2xx call.
            models.Index(
                fields=["-created_at", "-id"], name="exchange_unusual_idx", condition=UNUSUAL
            ),
            models.Index(
                STATUS_CLASS,
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="exchange_status_class_idx",
                condition=UNUSUAL,
            ),
            models.Index(fields=["request_id"], name="exchange_request_id_idx"),
            # varchar_pattern_ops: PostgreSQL serves LIKE 'prefix%' from it whatever the
            # database's collation; SQLite ignores it and serves a range from its own order.
            models.Index(
                fields=["path_prefix"], name="exchange_path_idx", opclasses=["varchar_pattern_ops"]
            ),
            # A batch's (a job's) exchanges, newest first: served in order, however many.
            models.Index(fields=["batch_id", "-created_at", "-id"], name="exchange_batch_idx"),
            # The admin filters by kind (token requests are few among many calls) and sorts
            # by duration ("the slowest calls").
            models.Index(fields=["kind", "created_at"], name="exchange_kind_idx"),
            models.Index(fields=["duration_ms"], name="exchange_duration_idx"),
            # A job's recovery looks an item's exchange up by its reference; most rows have none.
            models.Index(
                fields=["reference"],
                name="exchange_reference_idx",
                condition=~models.Q(reference=""),
            ),
            # The history and the admin by connection, and who may read only some: most rows
            # are default's, served by the recent index, so the others' index leaves it out.
            models.Index(
                fields=["connection", "-created_at", "-id"],
                name="exchange_connection_idx",
                condition=~models.Q(connection="default"),
            ),
            # The admin's "unknown" filter, beside the pending one: rows left by a crash are few,
            # and are written once, by the sweep (no cost per call).
            models.Index(
                fields=["-created_at"],
                name="exchange_unknown_idx",
                condition=models.Q(state="unknown"),
            ),
            # The ledger's sweep looks for rows left pending; few are at any time.
            models.Index(
                fields=["settle_by"],
                name="exchange_pending_idx",
                condition=models.Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        outcome = self.status or self.error_code or "no response"
        return f"{self.method} {self.path[:80]} -> {outcome}"

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400

    @property
    def shown_state(self) -> "Exchange.State":
        """The state to show: a pending row past its ``settle_by`` is unknown (its process
        died), before the ledger's sweep has marked it so."""
        if self.state == self.State.PENDING and self.settle_by and self.settle_by < timezone.now():
            return self.State.UNKNOWN
        return self.State(self.state)


class ExchangeSummary(Exchange):
    """No data of its own: the admin index links to a model, so the summary page has one."""

    class Meta:
        proxy = True
        default_permissions = ()  # viewing the summary takes the permission to view exchanges
        verbose_name = verbose_name_plural = "summary of recent calls"

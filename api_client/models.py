import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connections, models
from django.db.models import Q
from django.db.models.sql import InsertQuery
from django.utils import timezone


def credential_key(token_url: str, client_id: str, scope: str = "") -> str:
    """The identity of one credential: one persisted token per token endpoint, client and
    scope, so a token granted for one scope is never used for another."""
    identity = f"{token_url}\n{client_id}"
    if scope := " ".join(sorted(set(scope.split()))):
        identity += f"\n{scope}"
    return hashlib.sha256(identity.encode()).hexdigest()


def mask(secret: str) -> str:
    """Enough of a secret to tell two apart in the admin, never enough to use it."""
    if not secret:
        return ""
    return f"{secret[:4]}…{len(secret)} chars" if len(secret) > 12 else "…"


class TokenState(models.TextChoices):
    MISSING = "missing", "no token yet"
    VALID = "valid", "valid"
    EXPIRING = "expiring", "expiring soon"
    EXPIRED = "expired", "expired"
    FAILED = "failed", "failed"


class Token(models.Model):
    """The access token of one credential, shared by every thread and process.

    ``lease_owner``/``lease_until`` implement single flight (see ``api_client.tokens``).
    """

    credential_key = models.CharField(max_length=64, unique=True)
    token_url = models.CharField(max_length=2048)
    client_id = models.CharField(max_length=255)
    access_token = models.TextField(blank=True)
    refresh_token = models.TextField(blank=True)
    scope = models.CharField(max_length=1000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    obtained_at = models.DateTimeField("last refresh", null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"token for {self.client_id} at {self.token_url}"

    @property
    def masked_access_token(self) -> str:
        return mask(self.access_token)

    @property
    def lifetime(self) -> timedelta | None:
        if self.expires_at and self.obtained_at:
            return self.expires_at - self.obtained_at
        return None

    def refresh_due_at(self, leeway_seconds: int) -> datetime | None:
        """When this token should be replaced: ``leeway`` before expiry, capped at half its life.

        The cap keeps short-lived tokens in use: a 60-second token with a 60-second leeway
        would otherwise be refreshed on every call.
        """
        if not self.access_token or not self.expires_at:
            return None
        leeway = timedelta(seconds=leeway_seconds)
        if self.lifetime is not None:
            leeway = min(leeway, self.lifetime / 2)
        return self.expires_at - leeway

    def is_usable(self, leeway_seconds: int, now: datetime | None = None) -> bool:
        due = self.refresh_due_at(leeway_seconds)
        return due is not None and (now or timezone.now()) < due

    def state(self, leeway_seconds: int, now: datetime | None = None) -> TokenState:
        now = now or timezone.now()
        if not self.access_token or not self.expires_at:
            return TokenState.FAILED if self.last_error else TokenState.MISSING
        if self.expires_at <= now:
            return TokenState.FAILED if self.last_error else TokenState.EXPIRED
        if not self.is_usable(leeway_seconds, now):
            return TokenState.EXPIRING
        return TokenState.VALID


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


FAILED = Q(status__gte=400) | Q(status__isnull=True)
PURGE_BATCH_SIZE = 500
PURGE_PAUSE = 0.05


class ExchangeQuerySet(models.QuerySet):
    def failed(self) -> "ExchangeQuerySet":
        return self.filter(FAILED)

    def succeeded(self) -> "ExchangeQuerySet":
        return self.filter(status__gte=200, status__lt=400)

    def in_status_class(self, status_class: int) -> "ExchangeQuerySet":
        """Exchanges whose status is ``status_class``xx (2 -> 200-299); 0 is "no response"."""
        return self.filter(StatusClass(status_class).q())

    def older_than(self, days: float) -> "ExchangeQuerySet":
        return self.created_before(timezone.now() - timedelta(days=days))

    def created_before(self, cutoff: datetime) -> "ExchangeQuerySet":
        return self.filter(created_at__lt=cutoff)

    def purge(
        self,
        *,
        batch_size: int = PURGE_BATCH_SIZE,
        pause: float = PURGE_PAUSE,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete these exchanges, oldest first, ``batch_size`` rows at a time.

        Each batch is its own short transaction (a SELECT of ids, then a DELETE of those ids),
        and the ``pause`` between batches lets writers queued on the lock (SQLite has one for
        the whole database) go first, so a large purge never blocks the client's exchange log
        for longer than one small batch takes. Returns how many rows went.
        """
        ordered = self.order_by("created_at", "id")
        deleted = 0
        while ids := list(ordered.values_list("id", flat=True)[:batch_size]):
            count, _ = self.model.objects.filter(id__in=ids).delete()
            deleted += count
            if on_batch is not None:
                on_batch(deleted)
            if len(ids) < batch_size:
                break
            if pause:
                time.sleep(pause)
        return deleted


class ExchangeManager(models.Manager.from_queryset(ExchangeQuerySet)):
    """Adds ``record``: the INSERT on every API call's path, compiled once per connection.

    ``Model.save()`` recompiles the same 18-column INSERT for every row, which costs more
    than executing it (about 150 us of the client's per-call overhead, see BENCHMARKS.md).
    ``record`` lets Django's own compiler write the SQL once per database alias, then only
    prepares the values, exactly as ``save()`` does. No model signals are sent.
    """

    _insert_sql: dict[str, str] = {}

    def record(self, exchange: "Exchange") -> int:
        connection = connections[self.db]
        meta = self.model._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.pk]
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

    def _compile_insert(self, connection, fields: list) -> str:
        query = InsertQuery(self.model)
        query.insert_values(fields, [self.model()])
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = [self.model._meta.pk]
        [(sql, _)] = compiler.as_sql()
        return sql


class Exchange(models.Model):
    """One outbound HTTP call, as sent and as answered, with secrets redacted."""

    class Kind(models.TextChoices):
        API = "api", "API call"
        TOKEN = "token", "token request"

    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=8, choices=Kind, default=Kind.API)
    method = models.CharField(max_length=10)
    url = models.CharField(max_length=4096)
    path = models.CharField(max_length=4096, help_text="Path and query below the base URL.")
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
    actor = models.CharField(
        max_length=150, blank=True, help_text="Who caused the call: a user, or a command."
    )

    objects = ExchangeManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("send_request", "Can send requests to the API")]
        indexes = [
            models.Index(fields=["actor", "-created_at"], name="exchange_actor_idx"),
            models.Index(fields=["-created_at", "-id"], name="exchange_recent_idx"),
            models.Index(fields=["status", "created_at"], name="exchange_status_idx"),
            models.Index(fields=["method", "created_at"], name="exchange_method_idx"),
            models.Index(fields=["request_id"], name="exchange_request_id_idx"),
            models.Index(fields=["batch_id"], name="exchange_batch_id_idx"),
            # The admin filters by kind (token requests are few among many calls) and sorts
            # by duration ("the slowest calls").
            models.Index(fields=["kind", "created_at"], name="exchange_kind_idx"),
            models.Index(fields=["duration_ms"], name="exchange_duration_idx"),
        ]

    def __str__(self) -> str:
        outcome = self.status or self.error_code or "no response"
        return f"{self.method} {self.path[:80]} -> {outcome}"

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


class ExchangeSummary(Exchange):
    """No data of its own: the admin index links to a model, so the summary page has one."""

    class Meta:
        proxy = True
        default_permissions = ()  # viewing the summary takes the permission to view exchanges
        verbose_name = verbose_name_plural = "summary of recent calls"

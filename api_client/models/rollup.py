"""Calls per minute, by kind, status class and duration: what the admin's summary reads.

The summary of the last hour and day used to aggregate the exchange table itself, a cost that
grew with the traffic (223 ms at a million rows). The ledger adds each finished call to its
minute here, in the transaction that records it (``ExchangeRollup.objects.add``), so the
summary reads at most a day's minutes, however many calls they hold. Durations are counted in
buckets on a 1-2-3-5-7 scale; a percentile is read off them (interpolated within its bucket).
"""

import bisect
import math
from collections import Counter
from datetime import datetime
from typing import Any

from django.db import connections, models

# Upper edges of the duration buckets, milliseconds; the last bucket is everything above.
EDGES = (*(m * 10**e for e in range(0, 5) for m in (1, 2, 3, 5, 7)), 100_000)

type Key = tuple[datetime, str, int, int]  # (minute, kind, status class, bucket)


def bucket_of(duration_ms: float) -> int:
    return bisect.bisect_left(EDGES, duration_ms)


def bucket_range(bucket: int) -> tuple[float, float]:
    low = EDGES[bucket - 1] if bucket > 0 else 0.0
    high = EDGES[bucket] if bucket < len(EDGES) else EDGES[-1] * 2
    return low, high


def percentile(counts: dict[int, int], percent: float) -> float | None:
    """The nearest-rank percentile of the durations counted by bucket, interpolated."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, math.ceil(percent / 100 * total))
    seen = 0
    for bucket in sorted(counts):
        count = counts[bucket]
        if seen + count >= rank:
            low, high = bucket_range(bucket)
            return low + (high - low) * (rank - seen) / count
        seen += count
    return None  # pragma: no cover (rank <= total)


class RollupManager(models.Manager):
    def add(self, keys: Counter[Key]) -> None:
        """Add ``keys``' counts to their rows, in the caller's transaction (one upsert each:
        ``INSERT ... ON CONFLICT DO UPDATE``, on SQLite and PostgreSQL alike)."""
        if not keys:
            return
        connection = connections[self.db]
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        sql = (  # the table's name is the model's, never input
            f"INSERT INTO {table} (minute, kind, status_class, bucket, calls) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (minute, kind, status_class, bucket) "
            f"DO UPDATE SET calls = {table}.calls + excluded.calls"
        )
        minute = self.model._meta.get_field("minute")
        params = [
            [minute.get_db_prep_save(key[0], connection), key[1], key[2], key[3], count]
            for key, count in sorted(keys.items())  # a fixed order: no deadlock between writers
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


class ExchangeRollup(models.Model):
    minute = models.DateTimeField()
    kind = models.CharField(max_length=8)
    status_class = models.PositiveSmallIntegerField()  # 0: no answer
    bucket = models.PositiveSmallIntegerField()  # of duration, see EDGES
    calls = models.PositiveIntegerField(default=0)

    objects = RollupManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "kind", "status_class", "bucket"], name="rollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.kind} {self.status_class}xx: {self.calls}"

    @staticmethod
    def key_of(exchange: Any) -> Key:
        """Where a finished ``exchange`` is counted: the minute it started in."""
        minute = exchange.created_at.replace(second=0, microsecond=0)
        status = exchange.status
        status_class = status // 100 if status is not None and 100 <= status < 600 else 0
        return (minute, str(exchange.kind), status_class, bucket_of(exchange.duration_ms or 0.0))

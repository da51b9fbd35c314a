"""Numbers about exchanges: percentiles, and the figures of the admin's summary page.

Everything is computed in the database with a bounded number of queries, whatever the size of
the table: counts by status class in one aggregate per window, a percentile with one indexed
``ORDER BY ... LIMIT 1 OFFSET k``, and a chart's buckets as conditional counts in one query
(portable to SQLite and PostgreSQL, and no per-row date function, which on SQLite would be a
Python call per row).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q

from .models import FAILED, Exchange, ExchangeQuerySet, StatusClass

# The classes the summary shows, in its order.
SUMMARY_CLASSES = (
    StatusClass.SUCCESS,
    StatusClass.REDIRECTION,
    StatusClass.CLIENT_ERROR,
    StatusClass.SERVER_ERROR,
    StatusClass.NONE,
)


def rank(count: int, percent: float) -> int:
    """The 0-based index of the ``percent``th percentile of ``count`` sorted values.

    Nearest rank: the smallest value with at least ``percent``% of the values at or below it.
    """
    if count < 1:
        raise ValueError("No values, no percentile.")
    return min(count - 1, max(0, math.ceil(percent / 100 * count) - 1))


def percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile of ``values`` (any order); None when there are none."""
    if not values:
        return None
    return sorted(values)[rank(len(values), percent)]


def duration_percentile(queryset: ExchangeQuerySet, count: int, percent: float) -> float | None:
    """The percentile of ``duration_ms`` over ``queryset``, which holds ``count`` rows."""
    if count < 1:
        return None
    index = rank(count, percent)
    ordered = queryset.order_by("duration_ms").values_list("duration_ms", flat=True)
    found = list(ordered[index : index + 1])
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class WindowStats:
    label: str
    since: datetime
    total: int
    failed: int
    by_class: tuple[tuple[str, int, int], ...]  # (label, status class digit, count)
    p50: float | None
    p95: float | None
    token_requests: int

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.total if self.total else None


def window_stats(label: str, since: datetime) -> WindowStats:
    recent = Exchange.objects.filter(created_at__gte=since)
    aggregates = {
        "total": Count("id", filter=Q(kind=Exchange.Kind.API)),
        "failed": Count("id", filter=Q(kind=Exchange.Kind.API) & FAILED),
        "token_requests": Count("id", filter=Q(kind=Exchange.Kind.TOKEN)),
    }
    for status_class in SUMMARY_CLASSES:
        aggregates[f"class{status_class}"] = Count(
            "id", filter=Q(kind=Exchange.Kind.API) & status_class.q()
        )
    row = recent.aggregate(**aggregates)
    calls = recent.filter(kind=Exchange.Kind.API)
    return WindowStats(
        label=label,
        since=since,
        total=row["total"],
        failed=row["failed"],
        by_class=tuple(
            (str(status_class.label), int(status_class), row[f"class{status_class}"])
            for status_class in SUMMARY_CLASSES
        ),
        p50=duration_percentile(calls, row["total"], 50),
        p95=duration_percentile(calls, row["total"], 95),
        token_requests=row["token_requests"],
    )


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime
    total: int
    failed: int


def calls_over_time(end: datetime, step: timedelta, buckets: int) -> list[Bucket]:
    """API calls per ``step`` for ``buckets`` steps up to ``end`` (aligned to whole steps)."""
    step_seconds = int(step.total_seconds())
    epoch = int(end.timestamp())
    last_start = epoch - epoch % step_seconds
    starts = [
        datetime.fromtimestamp(last_start - step_seconds * n, tz=UTC)
        for n in reversed(range(buckets))
    ]
    edges = [*starts, starts[-1] + step]
    calls = Exchange.objects.filter(
        kind=Exchange.Kind.API, created_at__gte=edges[0], created_at__lt=edges[-1]
    )
    aggregates = {}
    for n in range(buckets):
        inside = Q(created_at__gte=edges[n], created_at__lt=edges[n + 1])
        aggregates[f"t{n}"] = Count("id", filter=inside)
        aggregates[f"f{n}"] = Count("id", filter=inside & FAILED)
    row = calls.aggregate(**aggregates)
    return [Bucket(edges[n], edges[n + 1], row[f"t{n}"], row[f"f{n}"]) for n in range(buckets)]

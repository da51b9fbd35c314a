"""Numbers about exchanges: percentiles, and the figures of the admin's summary page.

The summary reads the per-minute rollup (``ExchangeRollup``), never the exchange table: a
window's counts by status class and its latency percentiles from one grouped query, a chart's
buckets from one query of conditional sums. Neither grows with the number of calls.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, Sum

from .models import Exchange, ExchangeRollup, StatusClass, rollup

# The classes the summary shows, in its order.
FAILED_CLASSES = (0, 4, 5)  # no answer, 4xx, 5xx
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
    """Calls since ``since`` (to the minute), from the per-minute rollup: one grouped query
    over at most a day's minutes, however many calls they counted."""
    rows = (
        ExchangeRollup.objects.filter(minute__gte=_minute(since))
        .values_list("kind", "status_class", "bucket")
        .annotate(calls=Sum("calls"))
        .order_by()
    )
    by_class: Counter[int] = Counter()
    durations: Counter[int] = Counter()
    tokens = 0
    for kind, status_class, bucket, calls in rows:
        if kind == Exchange.Kind.TOKEN:
            tokens += calls
            continue
        by_class[status_class] += calls
        durations[bucket] += calls
    total = sum(by_class.values())
    return WindowStats(
        label=label,
        since=since,
        total=total,
        failed=sum(by_class[c] for c in FAILED_CLASSES),
        by_class=tuple(
            (str(status_class.label), int(status_class), by_class[status_class])
            for status_class in SUMMARY_CLASSES
        ),
        p50=rollup.percentile(durations, 50),
        p95=rollup.percentile(durations, 95),
        token_requests=tokens,
    )


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


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
    calls = ExchangeRollup.objects.filter(
        kind=Exchange.Kind.API, minute__gte=edges[0], minute__lt=edges[-1]
    )
    failed = Q(status_class__in=FAILED_CLASSES)
    aggregates = {}
    for n in range(buckets):
        inside = Q(minute__gte=edges[n], minute__lt=edges[n + 1])
        aggregates[f"t{n}"] = Sum("calls", filter=inside, default=0)
        aggregates[f"f{n}"] = Sum("calls", filter=inside & failed, default=0)
    row = calls.aggregate(**aggregates)
    return [Bucket(edges[n], edges[n + 1], row[f"t{n}"], row[f"f{n}"]) for n in range(buckets)]

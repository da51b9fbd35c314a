"""Percentiles and the summary's figures."""

from datetime import UTC, datetime, timedelta

import pytest

from api_client.metrics import calls_over_time, percentile, rank, window_stats
from tests.helpers.exchanges import ago, make_exchange, record_finished


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 95, 5.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        (list(map(float, range(1, 101))), 95, 95.0),
        (list(map(float, range(1, 101))), 100, 100.0),
        (list(map(float, range(1, 101))), 0, 1.0),
        ([], 50, None),
    ],
)
def test_percentile_is_the_nearest_rank(values, percent, expected):
    assert percentile(values, percent) == expected


def test_rank_refuses_no_values():
    with pytest.raises(ValueError, match="No values"):
        rank(0, 50)


@pytest.mark.django_db
def test_window_stats_match_percentile_over_the_same_rows():
    durations = [7.0, 3.0, 9.0, 1.0, 5.0, 8.0, 2.0]
    record_finished([make_exchange(created_at=ago(minutes=5), duration_ms=d) for d in durations])

    stats = window_stats("w", ago(hours=1))

    # Read off the rollup's buckets (1-2-3-5-7 per decade): the exact p50, 5 ms, is an edge;
    # the exact p95, 9 ms, lies in the bucket (7, 10].
    assert stats.p50 == percentile(durations, 50) == 5.0
    assert 7.0 < stats.p95 <= 10.0


@pytest.mark.django_db
def test_calls_over_time_counts_each_call_in_its_bucket():
    end = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
    record_finished(
        [
            make_exchange(created_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),  # a start edge
            make_exchange(created_at=datetime(2026, 11, 25, 12, 29, tzinfo=UTC), status=500),
            make_exchange(created_at=datetime(2026, 11, 25, 11, 59, 59, tzinfo=UTC)),
            make_exchange(created_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
            make_exchange(created_at=datetime(2026, 11, 25, 9, 59, tzinfo=UTC)),  # too old
            make_exchange(created_at=datetime(2026, 11, 25, 11, 0, tzinfo=UTC), kind="token"),
        ]
    )

    buckets = calls_over_time(end, timedelta(hours=1), 3)

    assert [b.start.hour for b in buckets] == [10, 11, 12]
    assert buckets[-1].end == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    assert [(b.total, b.failed) for b in buckets] == [(1, 0), (1, 0), (2, 1)]

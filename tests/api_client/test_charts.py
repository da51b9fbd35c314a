"""Server-side SVG bar charts: scale, geometry, labels."""

from datetime import UTC, datetime, timedelta

import pytest

from api_client.admin.charts import BOTTOM, HEIGHT, TOP, bar_chart, nice_ceiling
from api_client.metrics import Bucket


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (45, 50), (51, 100), (999, 1000)],
)
def test_the_scale_ends_on_a_round_number(value, expected):
    assert nice_ceiling(value) == expected


def buckets(*counts: tuple[int, int]) -> list[Bucket]:
    start = datetime(2026, 11, 25, tzinfo=UTC)
    hour = timedelta(hours=1)
    return [
        Bucket(start + n * hour, start + (n + 1) * hour, total, failed)
        for n, (total, failed) in enumerate(counts)
    ]


def chart(*counts: tuple[int, int]):
    return bar_chart(
        "t", buckets(*counts), label=lambda b: f"{b.start:%H}", href=lambda b: "#", label_every=2
    )


def test_bars_stack_failures_on_successes_in_proportion():
    drawn = chart((10, 0), (10, 5), (0, 0))
    plot = HEIGHT - BOTTOM - TOP

    full, half_failed, empty = drawn.bars
    assert full.ok_height == pytest.approx(plot)
    assert half_failed.ok_height == pytest.approx(plot / 2)
    assert half_failed.failed_height == pytest.approx(plot / 2)
    assert half_failed.failed_y + half_failed.failed_height == pytest.approx(half_failed.ok_y)
    assert (empty.ok_height, empty.failed_height) == (0, 0)
    assert full.x < half_failed.x < empty.x
    assert (drawn.total, drawn.failed) == (20, 5)


def test_titles_and_labels():
    drawn = chart((1, 0), (2, 1), (0, 0))

    assert drawn.bars[0].title == "00: 1 call, 0 failed"
    assert drawn.bars[1].title == "01: 2 calls, 1 failed"
    assert [t.label for t in drawn.x_ticks] == ["00", "02"]
    assert [t.label for t in drawn.y_ticks] == ["0", "1", "2"]


def test_an_empty_chart_has_a_scale_of_one():
    drawn = chart((0, 0), (0, 0))

    assert [t.label for t in drawn.y_ticks] == ["0", "1"]
    assert all(b.ok_height == 0 for b in drawn.bars)

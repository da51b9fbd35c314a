"""Bar charts drawn on the server as SVG geometry: no JavaScript, no CDN, nothing inline to
allow in a Content-Security-Policy. The template turns a ``BarChart`` into ``<rect>``s; colours
come from the static stylesheet, so the chart follows the admin's light and dark themes.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..metrics import Bucket

WIDTH = 720
HEIGHT = 200
LEFT = 44  # room for the y-axis labels
BOTTOM = 22  # room for the x-axis labels
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    title: str
    href: str


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    plot_left: int
    plot_bottom: int
    total: int
    failed: int


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value``."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover (factor 10 always suffices)


def bar_chart(
    title: str,
    buckets: Sequence[Bucket],
    *,
    label: Callable[[Bucket], str],
    href: Callable[[Bucket], str],
    label_every: int,
) -> BarChart:
    """Stacked bars (succeeded below, failed on top) of ``buckets``, oldest on the left."""
    top = nice_ceiling(max((b.total for b in buckets), default=0))
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - BOTTOM - TOP
    slot = plot_width / max(len(buckets), 1)
    gap = min(2.0, slot * 0.2)
    base = HEIGHT - BOTTOM
    bars = []
    for n, bucket in enumerate(buckets):
        ok = bucket.total - bucket.failed
        ok_height = plot_height * ok / top
        failed_height = plot_height * bucket.failed / top
        calls = "call" if bucket.total == 1 else "calls"
        bars.append(
            Bar(
                x=round(LEFT + n * slot + gap / 2, 2),
                width=round(slot - gap, 2),
                ok_y=round(base - ok_height, 2),
                ok_height=round(ok_height, 2),
                failed_y=round(base - ok_height - failed_height, 2),
                failed_height=round(failed_height, 2),
                title=f"{label(bucket)}: {bucket.total} {calls}, {bucket.failed} failed",
                href=href(bucket),
            )
        )
    y_ticks = tuple(
        Tick(round(base - plot_height * fraction, 2), f"{round(top * fraction):g}")
        for fraction in (0, 0.5, 1)
        if fraction == 0 or top * fraction == int(top * fraction)
    )
    x_ticks = tuple(
        Tick(round(LEFT + n * slot + slot / 2, 2), label(bucket))
        for n, bucket in enumerate(buckets)
        if n % label_every == 0
    )
    return BarChart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        bars=tuple(bars),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        plot_left=LEFT,
        plot_bottom=base,
        total=sum(b.total for b in buckets),
        failed=sum(b.failed for b in buckets),
    )

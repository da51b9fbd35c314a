"""The admin's summary page: calls in the last hour and day, and charts of calls over time.

The admin index links to models, so the page hangs off ``ExchangeSummary``, a proxy model
without permissions of its own: whoever may view exchanges may view their summary.
"""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from .. import metrics
from ..connections import reads_every_connection
from ..models import Exchange, ExchangeSummary
from . import charts
from .changelist import changelist_url


@admin.register(ExchangeSummary)
class SummaryAdmin(admin.ModelAdmin):
    """Calls in the last hour and day: by status class, error rate, latency, and charts."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Its rollup counts every connection's calls together: only for those who may read
        # them all.
        permitted = request.user.has_perm("api_client.view_exchange") or request.user.has_perm(
            "api_client.change_exchange"
        )
        return permitted and reads_every_connection(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="api_client_exchangesummary_changelist",
            )
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        windows = [
            metrics.window_stats("last hour", now - timedelta(hours=1)),
            metrics.window_stats("last day", now - timedelta(days=1)),
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "API calls: summary",
            "subtitle": None,
            "opts": self.opts,
            "now": now,
            "windows": windows,
            "rows": _summary_rows(windows),
            "charts": _charts(now),
            "exchanges_url": changelist_url(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/api_client/summary.html", context)


def _summary_rows(windows: list[metrics.WindowStats]) -> list[dict[str, Any]]:
    """The summary table, one row per figure, one cell per window (with a link where useful)."""

    def since(window: metrics.WindowStats) -> dict[str, str]:
        return {"kind__exact": Exchange.Kind.API, "created_at__gte": window.since.isoformat()}

    rows = [
        {
            "label": "API calls",
            "cells": [(w.total, changelist_url(**since(w))) for w in windows],
        }
    ]
    for index, (label, digit, _) in enumerate(windows[0].by_class):
        rows.append(
            {
                "label": label,
                "cells": [
                    (w.by_class[index][2], changelist_url(**since(w), status_class=digit))
                    for w in windows
                ],
            }
        )
    rows += [
        {
            "label": "error rate",
            "cells": [
                (
                    "—" if w.error_rate is None else f"{w.error_rate:.1%}",
                    changelist_url(**since(w), error="yes"),
                )
                for w in windows
            ],
        },
        {"label": "p50 latency", "cells": [(_ms(w.p50), "") for w in windows]},
        {"label": "p95 latency", "cells": [(_ms(w.p95), "") for w in windows]},
        {
            "label": "token requests",
            "cells": [
                (
                    w.token_requests,
                    changelist_url(
                        kind__exact=Exchange.Kind.TOKEN, created_at__gte=w.since.isoformat()
                    ),
                )
                for w in windows
            ],
        },
    ]
    return rows


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _charts(now: datetime) -> list[charts.BarChart]:
    def href(bucket: metrics.Bucket) -> str:
        return changelist_url(
            kind__exact=Exchange.Kind.API,
            created_at__gte=bucket.start.isoformat(),
            created_at__lt=bucket.end.isoformat(),
        )

    def clock(bucket: metrics.Bucket) -> str:
        return timezone.localtime(bucket.start).strftime("%H:%M")

    zone = timezone.get_current_timezone_name()
    return [
        charts.bar_chart(
            f"API calls per minute, last hour ({zone})",
            metrics.calls_over_time(now, timedelta(minutes=1), 60),
            label=clock,
            href=href,
            label_every=10,
        ),
        charts.bar_chart(
            f"API calls per hour, last 24 hours ({zone})",
            metrics.calls_over_time(now, timedelta(hours=1), 24),
            label=clock,
            href=href,
            label_every=3,
        ),
    ]

"""The exchange admin: what happened to a call.

The list stays fast on a large table (``changelist``, ``filters``); the log is read-only;
actions replay and export exchanges.
"""

import json
import uuid
from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ..client import get_client
from ..connections import UnknownConnectionError
from ..models import Exchange
from ..replay import Replay, replay
from . import export
from .base import ByConnection, ReadOnlyAdmin, SendsRequests, refused_connections
from .changelist import CappedPaginator, ExchangeChangeList, changelist_url
from .filters import (
    ActorFilter,
    BatchIdFilter,
    ConnectionFilter,
    ErrorFilter,
    MethodFilter,
    RequestIdFilter,
    StateFilter,
    StatusClassFilter,
)

REPLAY_LIMIT = 25
COMMON_MATCHES = 1000  # a search matching more is "common": see get_search_results
CREATED_FORMAT = "%Y-%m-%d %H:%M:%S"  # seconds: calls a second apart are told apart


def pretty(text: str) -> str:
    """JSON re-indented for reading; anything else as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # deeper than Python's stack: as it is
        return text


@admin.register(Exchange)
class ExchangeAdmin(SendsRequests, ByConnection, ReadOnlyAdmin):
    list_display = (
        "created",
        "kind",
        "method",
        "short_path",
        "status",
        "shown_state",
        "duration",
        "attempts",
        "error_code",
        "request_link",
        "batch_link",
        "actor_link",
        "connection",
    )
    sortable_by = ("created", "method", "status", "duration")
    list_filter = (
        StatusClassFilter,
        ErrorFilter,
        StateFilter,
        MethodFilter,
        ConnectionFilter,
        "kind",
        "created_at",
        RequestIdFilter,
        BatchIdFilter,
        ActorFilter,
    )
    search_fields = ("path", "request_id")  # searched by get_search_results, from indexes
    search_help_text = (
        "Finds exchanges whose path starts with what you type (items/3, /items?page=2) or "
        "whose request id is exactly it."
    )
    date_hierarchy = "created_at"
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ("replay_selected", "export_jsonl", "export_csv")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "created_at",
                    ("connection", "kind"),
                    ("method", "status", "shown_state"),
                    "url",
                    ("duration_ms", "attempts"),
                    ("error_code", "error"),
                )
            },
        ),
        (
            "Caused by",
            {"fields": ("actor_detail_link", "request_detail_link", "batch_detail_link", "thread")},
        ),
        ("Request", {"fields": ("pretty_request_headers", "pretty_request_body")}),
        (
            "Response",
            {"fields": ("pretty_response_headers", "pretty_response_body", "response_truncated")},
        ),
    )
    readonly_fields = (
        "created_at",
        "connection",
        "kind",
        "method",
        "status",
        "shown_state",
        "url",
        "duration_ms",
        "attempts",
        "error_code",
        "error",
        "actor_detail_link",
        "request_detail_link",
        "batch_detail_link",
        "thread",
        "pretty_request_headers",
        "pretty_request_body",
        "pretty_response_headers",
        "pretty_response_body",
        "response_truncated",
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ExchangeChangeList]:
        return ExchangeChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Exchange], search_term: str
    ) -> tuple[QuerySet[Exchange], bool]:
        """A path prefix or an exact request id, each from its index. Django's own search
        (``icontains``) reads every row: 2 s at a million rows, more as the table grows."""
        term = search_term.strip()
        if not term:
            return queryset, False
        prefix = term if term.startswith("/") else "/" + term
        # A cheap probe (ids from the path index) tells a rare prefix, whose rows are best
        # looked up, from a common one, whose newest page is best found in date order.
        probe = queryset.path_starts_with(prefix).values_list("pk", flat=True)
        ids = list(probe.order_by()[: COMMON_MATCHES + 1])
        if len(ids) > COMMON_MATCHES:
            by_path = queryset.path_starts_with(prefix, common=True)
        else:
            by_path = queryset.filter(pk__in=ids)
        return by_path | queryset.filter(request_id=term), False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The log is not edited by hand, and "delete all matching" on a large table would be
        # one long write transaction: purge_exchanges deletes in small batches instead.
        return False

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj: Exchange) -> str:
        return timezone.localtime(obj.created_at).strftime(CREATED_FORMAT)

    @admin.display(description="state")
    def shown_state(self, obj: Exchange) -> str:
        return obj.shown_state.label

    @admin.display(description="path")
    def short_path(self, obj: Exchange) -> str:
        return obj.path if len(obj.path) <= 80 else obj.path[:79] + "…"

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: Exchange) -> str:
        return f"{obj.duration_ms:.1f} ms"

    @admin.display(description="request id")
    def request_link(self, obj: Exchange) -> str:
        return _filter_link("request_id", obj.request_id, "request", short=True)

    @admin.display(description="batch")
    def batch_link(self, obj: Exchange) -> str:
        return _filter_link("batch_id", obj.batch_id, "batch", short=True)

    @admin.display(description="by")
    def actor_link(self, obj: Exchange) -> str:
        return _actor_link(obj.actor, short=True)

    @admin.display(description="actor")
    def actor_detail_link(self, obj: Exchange) -> str:
        return _actor_link(obj.actor, short=False)

    @admin.display(description="request id")
    def request_detail_link(self, obj: Exchange) -> str:
        return _filter_link("request_id", obj.request_id, "request", short=False)

    @admin.display(description="batch id")
    def batch_detail_link(self, obj: Exchange) -> str:
        return _filter_link("batch_id", obj.batch_id, "batch", short=False)

    @admin.display(description="request headers")
    def pretty_request_headers(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.request_headers, indent=2))

    @admin.display(description="request body")
    def pretty_request_body(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", pretty(obj.request_body))

    @admin.display(description="response headers")
    def pretty_response_headers(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.response_headers, indent=2))

    @admin.display(description="response body")
    def pretty_response_body(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", pretty(obj.response_body))

    # --- actions ---------------------------------------------------------------------------

    @admin.action(description="Replay selected exchanges (send them again)", permissions=("send",))
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> None:
        selected = list(queryset.defer(None)[: REPLAY_LIMIT + 1])
        if len(selected) > REPLAY_LIMIT:
            self.message_user(
                request,
                f"Select at most {REPLAY_LIMIT} exchanges to replay at once; nothing was sent.",
                messages.ERROR,
            )
            return
        if refused := refused_connections(request, {e.connection for e in selected}):
            self.message_user(
                request,
                f"You may not send with {', '.join(map(repr, refused))}; nothing was sent.",
                messages.ERROR,
            )
            return
        batch_id = uuid.uuid4().hex
        replays = []
        for name in sorted({e.connection for e in selected}):
            try:
                client = get_client(name)
            except UnknownConnectionError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            mine = [e for e in selected if e.connection == name]
            replays += replay(mine, client, batch_id=batch_id)
        if replays:
            self.message_user(request, *_replay_report(replays, batch_id))

    @admin.action(description="Export selected exchanges as JSON Lines")
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> HttpResponse:
        return _download(export.iter_jsonl(export.rows(queryset)), "jsonl", "application/jsonl")

    @admin.action(description="Export selected exchanges as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> HttpResponse:
        return _download(export.iter_csv(export.rows(queryset)), "csv", "text/csv; charset=utf-8")


def _replay_report(replays: list[Replay], batch_id: str) -> tuple[str, int]:
    """The message and its level: what was sent and how it went, what was skipped and why."""
    sent = [r for r in replays if not r.skipped]
    skipped = [r for r in replays if r.skipped]
    parts = []
    if sent:
        counts = Counter(r.outcome for r in sent)
        parts.append(
            format_html(
                'Replayed {} of {} as batch <a href="{}">{}</a>: {}.',
                len(sent),
                _exchanges(len(replays)),
                changelist_url(batch_id=batch_id),
                _short(batch_id),
                ", ".join(f"{name} x {count}" for name, count in sorted(counts.items())),
            )
        )
    if skipped:
        reasons = Counter(r.skipped for r in skipped)
        parts.append(
            format_html(
                "Skipped {} that could not be rebuilt in full: {}",
                _exchanges(len(skipped)),
                " ".join(f"{reason} ({count})" for reason, count in reasons.items()),
            )
        )
    if not sent:
        level = messages.ERROR
    elif skipped or any(r.response is None or not r.response.ok for r in sent):
        level = messages.WARNING
    else:
        level = messages.SUCCESS
    return format_html_join(" ", "{}", ((part,) for part in parts)), level


def _filter_link(parameter: str, value: str, noun: str, *, short: bool) -> str:
    """A link to the exchanges sharing this request or batch id."""
    if not value:
        return "—"
    return format_html(
        '<a href="{}" title="Every exchange of {} {}">{}</a>',
        changelist_url(**{parameter: value}),
        noun,
        value,
        _short(value) if short else value,
    )


def _actor_link(actor: str, *, short: bool) -> str:
    """A link to the exchanges this user or command caused."""
    if not actor:
        return "—"
    shown = actor if not short or len(actor) <= 24 else actor[:23] + "…"
    return format_html(
        '<a href="{}" title="Every exchange caused by {}">{}</a>',
        changelist_url(actor=actor),
        actor,
        shown,
    )


def _short(identifier: str) -> str:
    return identifier if len(identifier) <= 12 else identifier[:8] + "…"


def _exchanges(count: int) -> str:
    return f"{count} exchange" + ("" if count == 1 else "s")


def _download(content: Any, extension: str, content_type: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        content,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="exchanges-{stamp}.{extension}"'},
    )

"""The jobs admin: what a job did, and what to do about it.

Jobs are made by planning (``send_batch``, the console, Python), never by these forms: jobs and
items are read-only here. The job list shows each job's progress, counted for the jobs of the
page in two grouped queries; a job's page shows its description (``jobs.progress.describe``)
and links to its items, which are listed (paginated, filtered by job, state and status class)
rather than rendered inline: a job may hold 100,000 of them. Viewing takes
``api_client.view_exchange``; the actions, which send (or stop sending), take
``api_client.send_request``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from api_client.admin.base import ByConnection, ReadOnlyAdmin, SendsRequests
from api_client.admin.filters import ConnectionFilter
from api_client.connections import may_send
from api_client.permissions import VIEW
from api_client.redaction import redact_body, redact_headers

from . import actions as job_actions
from .models import Item, Job
from .progress import describe
from .workers import no_worker_warning

STATUS_CLASSES = (("2", "2xx"), ("3", "3xx"), ("4", "4xx"), ("5", "5xx"), ("none", "no answer"))


def items_url(job_id: int, **filters: str) -> str:
    """The item list of one job, filtered by ``filters``."""
    url = reverse("admin:jobs_item_changelist")
    return f"{url}?{urlencode({'job': job_id, **filters})}"


class ViewableWithExchanges(ReadOnlyAdmin):
    """Read by whoever may read the exchange log (``api_client.view_exchange``); never
    added, changed or deleted by hand."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- jobs --------------------------------------------------------------------------------------


class JobChangeList(ChangeList):
    """Each job of the page with its progress: finished and failing items, counted for the
    page's jobs only (two grouped queries), not per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        jobs = list(self.result_list)
        ids = [job.pk for job in jobs]
        done: dict[int, int] = {}
        failing: dict[int, int] = {}
        for job_id, state, n in (
            Item.objects.filter(job_id__in=ids)
            .values_list("job_id", "state")
            .annotate(n=Count("id"))
            .order_by()
        ):
            if state in Item.FINISHED:
                done[job_id] = done.get(job_id, 0) + n
            if state in (Item.State.FAILED, Item.State.UNKNOWN):
                failing[job_id] = failing.get(job_id, 0) + n
        for job_id, n in (
            Item.objects.filter(job_id__in=ids, state=Item.State.ANSWERED, status__gte=400)
            .values_list("job_id")
            .annotate(n=Count("id"))
            .order_by()
        ):
            failing[job_id] = failing.get(job_id, 0) + n
        for job in jobs:
            job.done_count = done.get(job.pk, 0)
            job.failing_count = failing.get(job.pk, 0)
        self.result_list = jobs


def _refusal(request: HttpRequest, job: Job) -> str:
    """Why the user may not act on ``job`` (``""`` when they may)."""
    if may_send(request.user, job.connection):
        return ""
    return f"Job {job.key}: you may not send with {job.connection!r}."


def _job_action(
    action: Callable[[Job], Any], done: str, description: str
) -> Callable[[Any, HttpRequest, QuerySet[Job]], None]:
    """An admin action that applies ``action`` to each selected job and says how it went
    (the list it returns to says when no worker will run them)."""

    def apply(model_admin: JobAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        changed, refused = [], []
        for job in queryset:
            if refusal := _refusal(request, job):
                refused.append(refusal)
                continue
            try:
                action(job)
            except job_actions.JobActionError as exc:
                refused.append(str(exc))
            else:
                changed.append(job)
        if changed:
            names = ", ".join(job.key[:8] for job in changed)
            model_admin.message_user(
                request, f"{done} {_jobs(len(changed))}: {names}.", messages.SUCCESS
            )
        for reason in refused:
            model_admin.message_user(request, reason, messages.WARNING)

    return admin.action(description=description, permissions=("send",))(apply)


def _resend(state: str) -> Callable[[Any, HttpRequest, QuerySet[Job]], None]:
    def apply(model_admin: JobAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        total, refused, none = 0, [], []
        for job in queryset:
            if refusal := _refusal(request, job):
                refused.append(refusal)
                continue
            try:
                count = job_actions.resend(job, state)
            except job_actions.JobActionError as exc:
                refused.append(str(exc))
                continue
            total += count
            if not count:
                none.append(job.key[:8])
        if total:
            model_admin.message_user(
                request,
                f"Planned {total} {state} item{'s' if total != 1 else ''} again.",
                messages.SUCCESS,
            )
        if none:
            model_admin.message_user(
                request, f"No {state} items in {', '.join(none)}: nothing to send.", messages.INFO
            )
        for reason in refused:
            model_admin.message_user(request, reason, messages.WARNING)

    apply.__name__ = f"resend_{state}"
    description = (
        "Send failed items again"
        if state == Item.State.FAILED
        else "Send unknown items again (they may have reached the API)"
    )
    return admin.action(description=description, permissions=("send",))(apply)


def _jobs(count: int) -> str:
    return f"{count} job" + ("" if count == 1 else "s")


@admin.register(Job)
class JobAdmin(SendsRequests, ByConnection, ViewableWithExchanges):
    list_display = ("shown_key", "name", "state", "progress", "failing", "created_by",
                    "origin", "created_at", "finished_at", "connection")  # fmt: skip
    list_display_links = ("shown_key",)
    list_filter = ("state", "origin", ConnectionFilter)
    search_fields = ("^key", "name")
    search_help_text = "Finds jobs whose key starts with what you type, or whose name holds it."
    sortable_by = ("name", "state", "created_at", "finished_at")
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ("pause_selected", "resume_selected", "cancel_selected",
               "resend_failed", "resend_unknown")  # fmt: skip
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "key",
                    "name",
                    "connection",
                    "state",
                    "progress_detail",
                    "items_link",
                    "error",
                )
            },
        ),
        ("Calls", {"fields": ("by_state", "by_status", "timing")}),
        (
            "Made",
            {
                "fields": (
                    ("origin", "created_by"),
                    ("created_at", "started_at", "finished_at"),
                    ("concurrency", "idempotency_header"),
                )
            },
        ),
    )
    readonly_fields = (
        "key", "name", "connection", "state", "progress_detail", "items_link", "error", "by_state",
        "by_status", "timing", "origin", "created_by", "created_at", "started_at",
        "finished_at", "concurrency", "idempotency_header",
    )  # fmt: skip

    pause_selected = _job_action(job_actions.pause, "Paused", "Pause selected jobs")
    resume_selected = _job_action(job_actions.resume, "Resumed", "Resume selected jobs")
    cancel_selected = _job_action(job_actions.cancel, "Cancelled", "Cancel selected jobs")
    resend_failed = _resend(Item.State.FAILED)
    resend_unknown = _resend(Item.State.UNKNOWN)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return JobChangeList

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        running = Job.objects.filter(state=Job.State.RUNNING)
        if request.method == "GET" and running.exists() and (warning := no_worker_warning()):
            self.message_user(request, warning, messages.WARNING)
        return super().changelist_view(request, extra_context)

    @staticmethod
    def _describe(job: Job) -> dict[str, Any]:
        """One description per page: kept on the job instance, which is the request's."""
        if "_described" not in job.__dict__:
            job.__dict__["_described"] = describe(job)
        return job.__dict__["_described"]

    # --- the list ------------------------------------------------------------------------

    @admin.display(description="job", ordering="created_at")
    def shown_key(self, job: Job) -> str:
        return job.key[:8]

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        done = getattr(job, "done_count", None)
        if done is None:  # not from the list: count it here
            done = sum(n for state, n in job.counts().items() if state in Item.FINISHED)
        percent = 100 * done // job.total if job.total else 100
        return format_html(
            '<progress max="{}" value="{}" title="{}%"></progress> {}/{} ({}%)',
            job.total or 1,
            done if job.total else 1,
            percent,
            done,
            job.total,
            percent,
        )

    @admin.display(description="failing")
    def failing(self, job: Job) -> str | int:
        count = getattr(job, "failing_count", 0)
        return format_html('<strong style="color: #ba2121">{}</strong>', count) if count else 0

    # --- the page --------------------------------------------------------------------------

    @admin.display(description="progress")
    def progress_detail(self, job: Job) -> str:
        d = self._describe(job)
        parts = [format_html("{} of {} calls done, {} failing", d["done"], d["total"],
                             d["failing"])]  # fmt: skip
        if d["calls_per_second"]:
            parts.append(format_html("{} calls/s", d["calls_per_second"]))
        if d["eta_seconds"]:
            parts.append(format_html("about {} s left", d["eta_seconds"]))
        percent = 100 * d["done"] // d["total"] if d["total"] else 100
        bar = format_html(
            '<progress max="100" value="{}" style="width: 20em"></progress> {}%', percent, percent
        )
        warning = format_html('<p class="errornote">{}</p>', d["warning"]) if d["warning"] else ""
        return format_html("{}<br>{}{}", bar, "; ".join(parts), warning)

    @admin.display(description="items")
    def items_link(self, job: Job) -> str:
        failing = items_url(job.pk, state__exact=Item.State.FAILED)
        unknown = items_url(job.pk, state__exact=Item.State.UNKNOWN)
        return format_html(
            '<a href="{}">All {} items</a> · <a href="{}">failed</a> · <a href="{}">unknown</a>',
            items_url(job.pk),
            job.total,
            failing,
            unknown,
        )

    @admin.display(description="by state")
    def by_state(self, job: Job) -> str:
        counts = self._describe(job)["counts"]
        return format_html_join(
            " · ",
            '<a href="{}">{} {}</a>',
            (
                (items_url(job.pk, state__exact=state), n, Item.State(state).label)
                for state, n in counts.items()
            ),
        )

    @admin.display(description="by status")
    def by_status(self, job: Job) -> str:
        by_status = self._describe(job)["by_status"]
        if not by_status:
            return "—"
        return format_html_join(
            " · ",
            '<a href="{}">{} x {}</a>',
            (
                (items_url(job.pk, status_class=status[0]), status, n)
                for status, n in by_status.items()
            ),
        )

    @admin.display(description="latency")
    def timing(self, job: Job) -> str:
        d = self._describe(job)
        if d["mean_ms"] is None:
            return "—"
        histogram = d["histogram"]
        spread = ""
        if histogram:
            edges = histogram["edges"]
            spread = format_html(", from {} to {} ms", edges[0], edges[-1])
        return format_html("mean {} ms{}", d["mean_ms"], spread)


# --- items -------------------------------------------------------------------------------------


class JobFilter(admin.SimpleListFilter):
    """The items of one job (``?job=ID``), reached from the job's page; no list of every job."""

    title = "job"
    parameter_name = "job"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"job {value}")] if value else []

    def has_output(self) -> bool:
        return self.value() is not None

    def queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> QuerySet[Item]:
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(job_id=int(value))


class StatusClassFilter(admin.SimpleListFilter):
    """2xx to 5xx, or no answer: fixed choices (no ``SELECT DISTINCT`` over every item)."""

    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return STATUS_CLASSES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> QuerySet[Item]:
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(status=None)
        if value in {"2", "3", "4", "5"}:
            low = int(value) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        return queryset.none()


@admin.register(Item)
class ItemAdmin(ByConnection, ViewableWithExchanges):
    connection_lookup = "job__connection"

    list_display = ("index", "job_link", "method", "short_path", "state", "status",
                    "duration", "sends", "error_code", "exchange_link", "finished_at")  # fmt: skip
    list_display_links = ("index",)
    list_filter = (JobFilter, "state", StatusClassFilter)
    sortable_by = ("index", "status", "duration", "finished_at")
    show_facets = admin.ShowFacets.NEVER
    show_full_result_count = False
    list_per_page = 100
    fields = ("job_link", "index", ("method", "path"), "shown_headers", "shown_body",
              "idempotency_key", ("state", "status", "sends"), ("duration_ms", "finished_at"),
              ("error_code", "error"), "exchange_link", ("lease_owner", "lease_until"),
              "not_before")  # fmt: skip
    readonly_fields = ("job_link", "index", "method", "path", "shown_headers", "shown_body",
                       "idempotency_key", "state", "status", "sends", "duration_ms",
                       "finished_at", "error_code", "error", "exchange_link", "lease_owner",
                       "lease_until", "not_before")  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            return queryset.defer("headers", "body")
        return queryset

    @admin.display(description="job")
    def job_link(self, item: Item) -> str:
        return format_html(
            '<a href="{}">job {}</a>', reverse("admin:jobs_job_change", args=[item.job_id]),
            item.job_id,
        )  # fmt: skip

    @admin.display(description="path")
    def short_path(self, item: Item) -> str:
        return item.path if len(item.path) <= 80 else item.path[:79] + "…"

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, item: Item) -> str:
        return f"{item.duration_ms:.1f} ms" if item.duration_ms is not None else "—"

    @admin.display(description="exchange")
    def exchange_link(self, item: Item) -> str:
        if item.exchange_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:api_client_exchange_change", args=[item.exchange_id]),
            item.exchange_id,
        )

    @admin.display(description="headers")
    def shown_headers(self, item: Item) -> str:
        return format_html("<pre>{}</pre>", json.dumps(redact_headers(item.headers), indent=2))

    @admin.display(description="body")
    def shown_body(self, item: Item) -> str:
        if item.body is None:
            return "—"
        text = redact_body(item.body, "application/json")
        with suppress(ValueError, RecursionError):  # not JSON (or too deep): as it is
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)

"""The exchange change list, kept fast on a table of any size.

Django's change list costs grow with the table in three places, each replaced here:

- the paginator counts every matching row on every page load: ``CappedPaginator`` counts at
  most ``cap`` of them (one ``COUNT`` over a ``LIMIT``) and the page says "more than ...";
- the date hierarchy runs ``SELECT DISTINCT`` over a date function of every row (on SQLite a
  Python call per row): ``date_hierarchy`` reads the first and last dates from the index, then
  asks in one query, with one indexed ``EXISTS`` per candidate year, month or day, which of
  them hold any row;
- each row of the page loads its bodies (up to ``LOG_BODY_LIMIT`` each): the list defers them.
"""

import calendar
import datetime
from typing import Any
from urllib.parse import urlencode

from django import template
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Exists, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst

from ..models import Exchange

# Columns the list never shows; actions that need them undo this with ``.defer(None)``.
LIST_DEFERRED = ("request_headers", "request_body", "response_headers", "response_body", "url")


def changelist_url(**filters: Any) -> str:
    """The exchange list, filtered by ``filters`` (query string parameters)."""
    url = reverse("admin:api_client_exchange_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


class CappedPaginator(Paginator):
    """A paginator that never counts more than ``cap`` rows.

    ``count`` is at most ``cap``; ``capped`` says whether more rows match. Pages beyond the cap
    are not offered (a filter or the date hierarchy reaches older rows faster anyway).
    """

    cap = 10_000

    @cached_property
    def _bounded_count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            return object_list.order_by()[: self.cap + 1].count()
        return len(object_list[: self.cap + 1])

    @cached_property
    def count(self) -> int:
        return min(self._bounded_count, self.cap)

    @property
    def capped(self) -> bool:
        return self._bounded_count > self.cap

    searching = False  # counted only up to the page after this one (see ExchangeChangeList)


class ExchangeChangeList(ChangeList):
    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        return super().get_queryset(request, exclude_parameters).defer(*LIST_DEFERRED)

    def get_results(self, request: HttpRequest) -> None:
        """With a search term, no count at all: the page and one row more, which says
        whether a next page exists (a rare term's count would read every candidate row)."""
        if not self.query:
            return super().get_results(request)
        per_page = self.list_per_page
        offset = (max(self.page_num, 1) - 1) * per_page
        rows = list(self.queryset[offset : offset + per_page + 1])
        paginator = self.model_admin.get_paginator(request, self.queryset, per_page)
        paginator.__dict__["_bounded_count"] = offset + len(rows)
        paginator.searching = True
        self.result_count = paginator.count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.full_result_count = None
        self.result_list = rows[:per_page]
        self.can_show_all = False
        self.multi_page = self.result_count > per_page
        self.paginator = paginator
        return None


def date_hierarchy(cl: ChangeList) -> dict[str, Any]:
    """The context of ``admin/date_hierarchy.html``, as Django's tag builds it, but cheaply."""
    field = cl.date_hierarchy
    year_field, month_field, day_field = f"{field}__year", f"{field}__month", f"{field}__day"
    try:
        year = int(cl.params[year_field]) if year_field in cl.params else None
        month = int(cl.params[month_field]) if month_field in cl.params else None
        day = int(cl.params[day_field]) if day_field in cl.params else None
    except ValueError:  # the change list has refused these already; show nothing
        return {"show": False}
    queryset = cl.queryset.order_by()
    field_name = Exchange._meta.get_field(field).verbose_name

    def link(filters: dict[str, Any]) -> str:
        return cl.get_query_string(filters, [f"{field}__"])

    if year is None:
        first = _edge(queryset, field)
        last = _edge(queryset, f"-{field}")
        if first is None or last is None:
            return {"show": True, "back": None, "choices": [], "field_name": field_name}
        if first.year == last.year:
            year = first.year
            if first.month == last.month:
                month = first.month
        else:
            years = _which_hold_rows(
                queryset,
                field,
                [(y, _start(y), _start(y + 1)) for y in range(first.year, last.year + 1)],
            )
            return {
                "show": True,
                "back": None,
                "choices": [{"link": link({year_field: str(y)}), "title": str(y)} for y in years],
                "field_name": field_name,
            }

    if month is None:
        months = _which_hold_rows(
            queryset,
            field,
            [(m, _start(year, m), _start(year, m + 1)) for m in range(1, 13)],
        )
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m}),
                    "title": capfirst(
                        formats.date_format(datetime.date(year, m, 1), "YEAR_MONTH_FORMAT")
                    ),
                }
                for m in months
            ],
            "field_name": field_name,
        }

    if day is None:
        days_in_month = calendar.monthrange(year, month)[1]
        days = _which_hold_rows(
            queryset,
            field,
            [
                (d, _start(year, month, d), _start(year, month, d + 1))
                for d in range(1, days_in_month + 1)
            ],
        )
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d}),
                    "title": capfirst(
                        formats.date_format(datetime.date(year, month, d), "MONTH_DAY_FORMAT")
                    ),
                }
                for d in days
            ],
            "field_name": field_name,
        }

    date = datetime.date(year, month, day)
    return {
        "show": True,
        "back": {
            "link": link({year_field: year, month_field: month}),
            "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
        },
        "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
        "field_name": field_name,
    }


def _edge(queryset: QuerySet, ordering: str) -> datetime.datetime | None:
    value = queryset.order_by(ordering).values_list(ordering.lstrip("-"), flat=True).first()
    return timezone.localtime(value) if value is not None else None


def _start(year: int, month: int = 1, day: int = 1) -> datetime.datetime:
    """Midnight starting that day in the current time zone; month 13 and day 32 roll over."""
    if month > 12:
        year, month = year + 1, month - 12
    days_in_month = calendar.monthrange(year, month)[1]
    if day > days_in_month:
        day -= days_in_month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return timezone.make_aware(datetime.datetime(year, month, day))


def _which_hold_rows(
    queryset: QuerySet,
    field: str,
    candidates: list[tuple[int, datetime.datetime, datetime.datetime]],
) -> list[int]:
    """The candidates ``(key, start, end)`` with at least one row in ``[start, end)``.

    One query: a single row carrying one ``EXISTS`` per candidate, each an index range probe.
    The candidate's range comes first in each probe: given two ranges on one column (the
    change list's own date filter is the other), SQLite searches the index by the first.
    """
    if not candidates:
        return []
    probes = {
        f"c{key}": Exists(
            (Exchange.objects.filter(**{f"{field}__gte": start, f"{field}__lt": end}) & queryset)
            .order_by()
            .values("pk")[:1]
        )
        for key, start, end in candidates
    }
    row = Exchange.objects.order_by().annotate(**probes).values(*probes)[:1]
    found = next(iter(row), None)
    if found is None:
        return []
    return [key for key, _, _ in candidates if found[f"c{key}"]]


# The change list template loads this as ``{% load exchange_admin %}`` (templatetags/).
register = template.Library()


@register.inclusion_tag("admin/date_hierarchy.html")
def exchange_date_hierarchy(cl: ChangeList) -> dict[str, Any]:
    """Django's ``date_hierarchy`` tag, without its scans of the whole table; none at all
    while a search term is set (its probes would each read the term's candidate rows)."""
    return date_hierarchy(cl) if cl.date_hierarchy and not cl.query else {"show": False}

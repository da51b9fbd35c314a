"""List filters of the exchange admin, chosen to stay cheap on a large table.

None of them asks the database for its choices (Django's default filter for a text field runs
a ``SELECT DISTINCT`` over the whole table on every page load): status classes, outcomes and
methods are fixed lists, and request and batch ids are typed in (or reached by clicking one
in the list). Each filter's query is served by an index of ``Exchange``.
"""

from typing import Any
from urllib.parse import parse_qsl

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from ..metrics import SUMMARY_CLASSES
from ..models import Exchange
from ..validation import METHODS


class StatusClassFilter(admin.SimpleListFilter):
    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(status_class), str(status_class.label)) for status_class in SUMMARY_CLASSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        if self.value() in {str(status_class) for status_class in SUMMARY_CLASSES}:
            return queryset.in_status_class(int(self.value()))
        return queryset


class ErrorFilter(admin.SimpleListFilter):
    title = "error"
    parameter_name = "error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Failed (400 or more, or no response)"), ("no", "Succeeded")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        if self.value() == "yes":
            return queryset.failed()
        if self.value() == "no":
            return queryset.succeeded()
        return queryset


class MethodFilter(admin.SimpleListFilter):
    title = "method"
    parameter_name = "method"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(method, method) for method in METHODS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        if self.value() in METHODS:
            return queryset.filter(method=self.value())
        return queryset


class ExactValueFilter(admin.SimpleListFilter):
    """A text box that selects the rows whose ``field`` equals what was typed."""

    template = "admin/api_client/exact_value_filter.html"
    field = ""
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("", "")]  # one pseudo-choice, or Django would not show the filter

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        value = (self.value() or "").strip()
        if value:
            return queryset.filter(**{self.field: value})
        return queryset

    def choices(self, changelist: ChangeList) -> Any:
        # The text box is a GET form: the other parameters ride along as hidden fields.
        others = changelist.get_query_string(remove=[self.parameter_name])
        yield {
            "selected": not self.value(),
            "query_string": others,
            "hidden": parse_qsl(others.lstrip("?"), keep_blank_values=True),
            "parameter_name": self.parameter_name,
            "value": self.value() or "",
            "placeholder": self.placeholder,
        }


class RequestIdFilter(ExactValueFilter):
    title = "request id"
    parameter_name = field = "request_id"
    placeholder = "exact request id"


class BatchIdFilter(ExactValueFilter):
    title = "batch id"
    parameter_name = field = "batch_id"
    placeholder = "exact batch id"

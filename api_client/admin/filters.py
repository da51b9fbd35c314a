"""List filters of the exchange admin, chosen to stay cheap on a large table.

None of them asks the database for its choices (Django's default filter for a text field runs
a ``SELECT DISTINCT`` over the whole table on every page load): status classes, outcomes and
methods are fixed lists, and request ids, batch ids and actors are typed in (or reached by
clicking one in the list). Each filter's query is served by an index of ``Exchange``.

A value a fixed list does not hold (``?status_class=4xx``, a hand-edited or outdated link)
shows an error that names the parameter and its values, and no rows: silently ignoring it
would show every exchange as if they matched.
"""

from typing import Any
from urllib.parse import parse_qsl

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from ..connections import readable
from ..metrics import SUMMARY_CLASSES
from ..models import Connection, Exchange
from ..models.connections import DEFAULT
from ..validation import METHODS


class FixedChoiceFilter(admin.SimpleListFilter):
    """A filter whose values are its ``lookups``; ``select`` applies one of them. Any other
    value selects nothing and says so (once per request, though Django filters twice when an
    action runs)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        value = self.value()
        if value is None or value == "":
            return queryset
        if value not in {key for key, _ in self.lookup_choices}:
            self.refuse(request, value)
            return queryset.none()
        return self.select(queryset, value)

    def select(self, queryset: QuerySet[Exchange], value: str) -> QuerySet[Exchange]:
        raise NotImplementedError

    def refuse(self, request: HttpRequest, value: str) -> None:
        refused = request.__dict__.setdefault("_refused_filters", set())
        if self.parameter_name in refused:
            return
        refused.add(self.parameter_name)
        allowed = ", ".join(
            key if key == label else f"{key} ({label})" for key, label in self.lookup_choices
        )
        messages.error(
            request,
            f"The {self.title} filter has no value {value!r} ({self.parameter_name}={value}), "
            f"so no exchanges are shown. Use {self.parameter_name}= one of: {allowed}; or pick "
            f'"All" under "By {self.title}".',
        )


class StatusClassFilter(FixedChoiceFilter):
    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(status_class), str(status_class.label)) for status_class in SUMMARY_CLASSES]

    def select(self, queryset: QuerySet[Exchange], value: str) -> QuerySet[Exchange]:
        return queryset.in_status_class(int(value))


class ErrorFilter(FixedChoiceFilter):
    title = "error"
    parameter_name = "error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Failed (400 or more, or no response)"), ("no", "Succeeded")]

    def select(self, queryset: QuerySet[Exchange], value: str) -> QuerySet[Exchange]:
        return queryset.failed() if value == "yes" else queryset.succeeded()


class StateFilter(FixedChoiceFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(state), str(state.label)) for state in Exchange.State]

    def select(self, queryset: QuerySet[Exchange], value: str) -> QuerySet[Exchange]:
        return queryset.in_state(value)


class ConnectionFilter(FixedChoiceFilter):
    """The connections the user may read (from their table: Django's own field filter would
    read the exchange log for its distinct values)."""

    title = "connection"
    parameter_name = "connection"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = set(Connection.objects.values_list("name", flat=True)) | {DEFAULT}
        allowed = readable(request.user)
        return [(name, name) for name in sorted(names) if allowed is None or name in allowed]

    def select(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(connection=value)


class MethodFilter(FixedChoiceFilter):
    title = "method"
    parameter_name = "method"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(method, method) for method in METHODS]

    def select(self, queryset: QuerySet[Exchange], value: str) -> QuerySet[Exchange]:
        return queryset.filter(method=value)


class ExactValueFilter(admin.SimpleListFilter):
    """A text box that selects the rows whose ``field`` equals what was typed."""

    template = "admin/api_client/exact_value_filter.html"
    field = ""
    placeholder = ""
    max_length = 64

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
            "max_length": self.max_length,
        }


class RequestIdFilter(ExactValueFilter):
    title = "request id"
    parameter_name = field = "request_id"
    placeholder = "exact request id"


class BatchIdFilter(ExactValueFilter):
    title = "batch id"
    parameter_name = field = "batch_id"
    placeholder = "exact batch id"


class ActorFilter(ExactValueFilter):
    """Who caused the calls: a user name, or ``command NAME`` (index ``exchange_actor_idx``)."""

    title = "actor"
    parameter_name = field = "actor"
    placeholder = "exact user or command"
    max_length = 150

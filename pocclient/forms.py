"""Forms that validate the console's input before anything is sent.

The JSON endpoints bind these forms to the decoded request body. The checks themselves are
the client's (``ApiClient.prepare``, one concept in one place): the forms only turn its
``InvalidRequestError`` into an error on the field it names, so a bad request is answered with
a 400 per field and never reaches the network. What they hand on is the checked ``Call``, so a
body is encoded once.
"""

from typing import Any

from django import forms

from api_client.client import ApiClient
from api_client.exceptions import InvalidRequestError
from api_client.messages import ApiRequest, Call
from api_client.models import StatusClass
from jobs.models import Item, Job

MAX_ITEM_ERRORS = 20  # of a refused batch, report this many items' errors, then a count


class ValueField(forms.Field):
    """A field for a value already decoded from JSON: it is passed through as it is."""

    def to_python(self, value: Any) -> Any:
        return value


class StrictForm(forms.Form):
    """A form that refuses keys it does not know (a typo such as ``body`` for ``json``)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        unknown = sorted(str(key) for key in self.data if key not in self.fields)
        if unknown:
            raise forms.ValidationError(
                f"Unknown field(s): {', '.join(unknown)}; use {', '.join(self.fields)}.",
                code="unknown_field",
            )
        return cleaned


def prepare(client: ApiClient, data: Any) -> Call:
    """``data`` as a checked call; ``InvalidRequestError`` names the field at fault."""
    if isinstance(data, dict):
        data = {name: data[name] for name in ApiRequest.FIELDS if name in data}
    return client.prepare(data)


class RequestForm(StrictForm):
    """One call, ``{"method", "path", "query", "headers", "json"}``, as ``request`` takes it."""

    connection = ValueField(required=False)  # chosen by the view (jsonapi.connection_client)
    method = ValueField(required=False)
    path = ValueField(required=False)  # "": the base URL itself
    query = ValueField(required=False)
    headers = ValueField(required=False)
    json = ValueField(required=False)  # null or absent: no body

    def __init__(self, *args: Any, client: ApiClient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.call: Call | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            self.call = prepare(self.client, self.data)
        except InvalidRequestError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


class TokenRefreshForm(StrictForm):
    """``{"force": true}`` refreshes now; without it only a token due for refresh is replaced."""

    force = forms.BooleanField(required=False)
    connection = ValueField(required=False)


class ExchangeFilterForm(forms.Form):
    """The history's query string: ``?page=N&status=4xx&batch_id=...``."""

    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=100)
    status = forms.TypedChoiceField(
        required=False,
        choices=[("", "any"), *((member.key, member.key) for member in StatusClass)],
        coerce=StatusClass.from_key,
        empty_value=None,
    )
    batch_id = forms.CharField(required=False, max_length=32)
    connection = forms.CharField(required=False, max_length=64)
    kind = forms.ChoiceField(
        required=False, choices=[("api", "API calls"), ("token", "token requests"), ("all", "all")]
    )


class JobFilterForm(forms.Form):
    """The job list's query string: ``?page=N&page_size=20&state=running``."""

    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=100)
    state = forms.ChoiceField(
        required=False, choices=[("", "any"), ("active", "not ended"), *Job.State.choices]
    )
    connection = forms.CharField(required=False, max_length=64)


class JobResultsForm(forms.Form):
    """A job's results: ``?format=json|csv|jsonl&order=-duration&state=failed&page=2``."""

    ORDERS = ("index", "-index", "status", "-status", "duration", "-duration")

    format = forms.ChoiceField(
        required=False, choices=[("json", "a page of JSON"), ("csv", "CSV"), ("jsonl", "JSONL")]
    )
    order = forms.ChoiceField(required=False, choices=[(order, order) for order in ORDERS])
    state = forms.MultipleChoiceField(required=False, choices=Item.State.choices)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=500)


class JobActionForm(StrictForm):
    """``pause``, ``resume`` and ``cancel`` take nothing; ``resend`` takes ``{"state"}``."""


class ResendForm(StrictForm):
    state = forms.ChoiceField(
        choices=[(Item.State.FAILED, "failed"), (Item.State.UNKNOWN, "unknown")],
        error_messages={"invalid_choice": "Send failed or unknown items again, not %(value)s."},
    )

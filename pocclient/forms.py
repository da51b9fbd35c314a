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


class BatchForm(StrictForm):
    """Many calls: ``{"requests": [...], "concurrency": N}``; every item is checked first."""

    requests = ValueField()
    concurrency = forms.IntegerField(required=False)

    def __init__(self, *args: Any, client: ApiClient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def clean_concurrency(self) -> int:
        try:
            return self.client.concurrency(self.cleaned_data["concurrency"])
        except InvalidRequestError as exc:
            raise forms.ValidationError(exc.message, code="out_of_range") from None

    def clean_requests(self) -> list[Call]:
        items = self.cleaned_data["requests"]
        cap = self.client.config.BATCH_MAX
        if not isinstance(items, list) or not items:
            raise forms.ValidationError("Give a non-empty list of requests.", code="invalid")
        if len(items) > cap:
            raise forms.ValidationError(
                f"The batch has {len(items)} requests; at most {cap} are allowed "
                "(POC_API_BATCH_MAX).",
                code="too_many",
            )
        calls, problems = [], []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(f"requests[{index}]: each request must be a JSON object.")
                continue
            unknown = sorted(str(key) for key in item if key not in ApiRequest.FIELDS)
            if unknown:
                problems.append(
                    f"requests[{index}]: Unknown field(s): {', '.join(unknown)}; "
                    f"use {', '.join(ApiRequest.FIELDS)}."
                )
                continue
            try:
                calls.append(prepare(self.client, item))
            except InvalidRequestError as exc:
                problems.append(f"requests[{index}].{exc.field}: {exc.message}")
        if problems:
            shown = problems[:MAX_ITEM_ERRORS]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more.")
            raise forms.ValidationError(
                [f"{len(problems)} of the {len(items)} requests are invalid.", *shown],
                code="invalid",
            )
        return calls


class TokenRefreshForm(StrictForm):
    """``{"force": true}`` refreshes now; without it only a token due for refresh is replaced."""

    force = forms.BooleanField(required=False)


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
    kind = forms.ChoiceField(
        required=False, choices=[("api", "API calls"), ("token", "token requests"), ("all", "all")]
    )

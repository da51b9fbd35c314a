"""Forms that validate the console's input before anything is sent.

The JSON endpoints bind these forms to the decoded request body. The checks themselves are
``api_client.validation``'s (one concept, one place): the forms only turn its
``InvalidRequestError`` into a ``ValidationError`` on the field it names, so a bad request is
answered with a 400 per field and never reaches the network.
"""

from collections.abc import Callable
from typing import Any

from django import forms

from api_client.conf import ApiSettings, api_settings
from api_client.exceptions import InvalidRequestError
from api_client.validation import (
    BODYLESS_METHODS,
    clean_headers,
    clean_method,
    clean_query,
    confine_path,
    encode_json,
)

STATUS_CLASSES = {"1xx": 1, "2xx": 2, "3xx": 3, "4xx": 4, "5xx": 5, "none": 0}
MAX_ITEM_ERRORS = 20  # of a refused batch, report this many items' errors, then a count


class ValueField(forms.Field):
    """A field for a value already decoded from JSON: it is passed through as it is."""

    def to_python(self, value: Any) -> Any:
        return value


def _checked[T](check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return check(*args, **kwargs)
    except InvalidRequestError as exc:
        raise forms.ValidationError(exc.message, code="invalid") from None


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


class RequestForm(StrictForm):
    """One call, ``{"method", "path", "query", "headers", "json"}``, as ``request`` takes it."""

    method = ValueField()
    path = ValueField(required=False)  # empty: the base URL itself
    query = ValueField(required=False)
    headers = ValueField(required=False)
    json = ValueField(required=False)  # null or absent: no body

    def __init__(self, *args: Any, config: ApiSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config or api_settings()

    def clean_method(self) -> str:
        return _checked(clean_method, self.cleaned_data["method"])

    def clean_path(self) -> str:
        path = self.cleaned_data["path"] or ""
        _checked(confine_path, self.config.base_url, path)
        return path

    def clean_query(self) -> Any:
        query = self.cleaned_data["query"]
        _checked(clean_query, query)
        return query or None

    def clean_headers(self) -> dict[str, str]:
        return _checked(clean_headers, self.cleaned_data["headers"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        body = cleaned.get("json")
        method = cleaned.get("method")
        if body is not None and method in BODYLESS_METHODS:
            self.add_error("json", f"A {method} request cannot have a body.")
        elif body is not None:
            try:
                _checked(encode_json, body, max_bytes=self.config.MAX_REQUEST_BYTES)
            except forms.ValidationError as exc:
                self.add_error("json", exc)
        return cleaned

    def as_call(self) -> dict[str, Any]:
        """The cleaned call, as keyword arguments for ``request`` or an item of ``iter_many``."""
        return {name: self.cleaned_data[name] for name in self.fields}


class BatchForm(StrictForm):
    """Many calls: ``{"requests": [...], "concurrency": N}``; every item is checked first."""

    requests = ValueField()
    concurrency = forms.IntegerField(required=False)

    def __init__(self, *args: Any, config: ApiSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config or api_settings()

    def clean_concurrency(self) -> int:
        value = self.cleaned_data["concurrency"]
        cap = self.config.MAX_WORKERS
        if value is None:
            return cap
        if not 1 <= value <= cap:
            raise forms.ValidationError(
                f"Concurrency must be between 1 and {cap} (POC_API_MAX_WORKERS).",
                code="out_of_range",
            )
        return value

    def clean_requests(self) -> list[dict[str, Any]]:
        items = self.cleaned_data["requests"]
        cap = self.config.BATCH_MAX
        if not isinstance(items, list) or not items:
            raise forms.ValidationError("Give a non-empty list of requests.", code="invalid")
        if len(items) > cap:
            raise forms.ValidationError(
                f"The batch has {len(items)} requests; at most {cap} are allowed "
                "(POC_API_BATCH_MAX).",
                code="too_many",
            )
        calls, problems, refused = [], [], 0
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                refused += 1
                problems.append(f"requests[{index}]: each request must be a JSON object.")
                continue
            form = RequestForm(data=item, config=self.config)
            if form.is_valid():
                calls.append(form.as_call())
                continue
            refused += 1
            for field, messages in form.errors.items():
                where = f"requests[{index}]" + ("" if field == "__all__" else f".{field}")
                problems.extend(f"{where}: {message}" for message in messages)
        if refused:
            shown = problems[:MAX_ITEM_ERRORS]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more.")
            raise forms.ValidationError(
                [f"{refused} of the {len(items)} requests are invalid.", *shown], code="invalid"
            )
        return calls


class TokenRefreshForm(StrictForm):
    """``{"force": true}`` refreshes now; without it only a token due for refresh is replaced."""

    force = forms.BooleanField(required=False)


class ExchangeFilterForm(forms.Form):
    """The history's query string: ``?page=N&status=4xx&batch_id=...``."""

    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=100)
    status = forms.ChoiceField(
        required=False, choices=[("", "any"), *((key, key) for key in STATUS_CLASSES)]
    )
    batch_id = forms.CharField(required=False, max_length=32)
    kind = forms.ChoiceField(
        required=False, choices=[("api", "API calls"), ("token", "token requests"), ("all", "all")]
    )

"""Reading JSON bodies and paging parameters; failures become precise 400 messages."""

import json

from django.core.exceptions import BadRequest
from django.http import HttpRequest


class QueryParameterError(ValueError):
    """A query parameter has a bad value; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def is_json_content_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(request: HttpRequest) -> object:
    """Return the parsed body, or raise ``BadRequest`` (a 400 via ``sandbox_view``) saying why."""
    if not request.body:
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        return json.loads(request.body, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest("The request body is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None


def query_int(request: HttpRequest, name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        raise QueryParameterError(
            name, f"{name} must be an integer between {minimum} and {maximum}; got {raw!r}."
        )
    return value

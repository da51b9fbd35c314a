"""JSON response helpers: every sandbox response is JSON, or has no body at all."""

from django.http import HttpResponse, JsonResponse

# Statuses that must not carry a body (RFC 9110 6.4.1).
BODYLESS_STATUSES = frozenset({204, 205, 304}) | frozenset(range(100, 200))


def json_response(data: object, status: int = 200, headers: dict | None = None) -> HttpResponse:
    if status in BODYLESS_STATUSES:
        return empty_response(status, headers)
    return JsonResponse(data, status=status, headers=headers, safe=False)


def empty_response(status: int = 204, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(status=status, headers=headers)
    del response["Content-Type"]  # no body, so no (default text/html) type either
    return response


def json_error(
    status: int, error: str, description: str, headers: dict | None = None, **extra: object
) -> HttpResponse:
    """An RFC 6749 5.2 error body (``error``, ``error_description``), used by the API too."""
    return json_response(
        {"error": error, "error_description": description, **extra}, status=status, headers=headers
    )


def not_found(description: str = "Nothing here.") -> HttpResponse:
    return json_error(404, "not_found", description)


def method_not_allowed(method: str, allowed: tuple[str, ...]) -> HttpResponse:
    return json_error(
        405,
        "method_not_allowed",
        f"Method {method} is not allowed here; use {', '.join(allowed)}.",
        headers={"Allow": ", ".join(allowed)},
    )

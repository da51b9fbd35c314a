from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse

from sandbox import stats
from sandbox.decorators import ALL_METHODS, sandbox_view
from sandbox.parsing import is_json_content_type, parse_json_body
from sandbox.responses import empty_response, json_response, not_found

# Credentials are never echoed back, so they cannot leak into a client's exchange log.
HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@sandbox_view(("GET",), auth=True, inject=True)
def whoami(request: HttpRequest) -> HttpResponse:
    token = request.access_token
    expires_at = datetime.fromtimestamp(token.expires_at, UTC)
    return json_response(
        {"client_id": token.client_id, "scope": token.scope, "expires_at": expires_at.isoformat()}
    )


@sandbox_view(ALL_METHODS, auth=True, inject=True)
def echo(request: HttpRequest, rest: str = "") -> HttpResponse:
    parsed, text = None, None
    if request.body:
        if is_json_content_type(request.content_type):
            parsed = parse_json_body(request)
        else:
            text = request.body.decode(_charset(request), errors="replace")
    return json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": {name: request.GET.getlist(name) for name in request.GET},
            "headers": {
                name: value
                for name, value in request.headers.items()
                if name.lower() not in HIDDEN_HEADERS
            },
            "json": parsed,
            "body": text,
        }
    )


def _charset(request: HttpRequest) -> str:
    charset = request.content_params.get("charset", "utf-8")
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


@sandbox_view(("GET",), count=False)
def stats_view(request: HttpRequest) -> HttpResponse:
    return json_response(stats.snapshot())


@sandbox_view(("POST",), count=False)
def stats_reset(request: HttpRequest) -> HttpResponse:
    stats.reset()
    return empty_response(204)


@sandbox_view(ALL_METHODS)
def no_endpoint(request: HttpRequest) -> HttpResponse:
    return not_found(f"There is no sandbox endpoint at {request.path}.")

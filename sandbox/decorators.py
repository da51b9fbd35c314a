"""``sandbox_view``: the one decorator every sandbox view wears.

It makes the view CSRF-exempt, answers 404/405/413/500 and every other failure with JSON
(a client under test must never have to parse a Django HTML page), counts the response, and
runs the checks in the order the sandbox promises:

- API endpoints (``auth=True, inject=True``): bearer token, then fault parameters, delay
  and injection, then the method check and the view. An invalid token is a 401 whatever
  else was asked.
- The token endpoint (``inject=True``): delay and injection before anything else.
"""

import logging
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import faults, stats
from sandbox.responses import json_error, method_not_allowed, not_found
from sandbox.tokens import InvalidTokenError, verify_access_token

logger = logging.getLogger(__name__)

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

type View = Callable[..., HttpResponse]


def sandbox_view(
    methods: tuple[str, ...], *, auth: bool = False, inject: bool = False, count: bool = True
) -> Callable[[View], View]:
    """Wrap a view as described in the module docstring.

    ``methods`` lists the allowed methods (HEAD is implied by GET). With ``auth``, the view
    finds the verified token in ``request.access_token``. ``count=False`` keeps the stats
    endpoints from counting themselves.
    """
    allowed = tuple(methods) + (("HEAD",) if "GET" in methods and "HEAD" not in methods else ())

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            response = _respond(view, request, args, kwargs, allowed, auth=auth, inject=inject)
            if count:
                stats.record_request(response.status_code)
            return response

        return csrf_exempt(wrapper)

    return decorator


def _respond(
    view: View,
    request: HttpRequest,
    args: tuple,
    kwargs: dict,
    allowed: tuple[str, ...],
    *,
    auth: bool,
    inject: bool,
) -> HttpResponse:
    try:
        if auth and (refused := _authenticate(request)) is not None:
            return refused
        if inject and (injected := _inject(request)) is not None:
            return injected
        if request.method not in allowed:
            return method_not_allowed(request.method or "", allowed)
        return view(request, *args, **kwargs)
    except Http404:
        return not_found()
    except RequestDataTooBig:
        return json_error(413, "request_too_large", "The request body is too large.")
    except PermissionDenied:
        return json_error(403, "forbidden", "Permission denied.")
    except (BadRequest, SuspiciousOperation) as exc:
        return json_error(400, "invalid_request", str(exc) or "Bad request.")
    except Exception:
        logger.exception("Sandbox view %s failed", view.__name__)
        return json_error(500, "server_error", "The sandbox failed; see its log.")


def _inject(request: HttpRequest) -> HttpResponse | None:
    try:
        plan = faults.parse(request.GET)
    except faults.FaultParameterError as exc:
        return json_error(400, "invalid_request", str(exc), parameter=exc.parameter)
    return faults.apply(plan)


def _authenticate(request: HttpRequest) -> HttpResponse | None:
    """Set ``request.access_token``; return a 401 response if there is no valid bearer token."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if not scheme:
        return _invalid_token("No bearer token was presented.")
    if scheme.lower() != "bearer" or not credentials.strip():
        return _invalid_token("The Authorization header is not 'Bearer <token>'.")
    try:
        request.access_token = verify_access_token(credentials.strip())
    except InvalidTokenError as exc:
        return _invalid_token(str(exc))
    return None


def _invalid_token(description: str) -> HttpResponse:
    challenge = f'Bearer realm="sandbox", error="invalid_token", error_description="{description}"'
    return json_error(401, "invalid_token", description, headers={"WWW-Authenticate": challenge})

"""The conventions of the console's JSON endpoints, in one place.

Every answer is JSON, never a redirect to an HTML page: an anonymous caller gets 401, a wrong
method 405, a user without the endpoint's permission 403 (``permission_denied``), a CSRF failure
403 (``pocclient.views.csrf_failure``), bad input 400, an action a job's state does not allow
409 (``job_views``), a busy or unreachable database 503, anything else unexpected 500. An
error body always has ``error: {"code", "message"}``; a validation error adds ``errors``, the
messages per field (``__all__`` for the input as a whole), as Django forms produce them.
"""

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.models import Permission
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from api_client.client import ApiClient, get_client
from api_client.connections import UnknownConnectionError, may_read, may_send, readable
from api_client.context import get_request_id
from api_client.models import Connection
from api_client.models.connections import DEFAULT, NAME_RULE, is_name
from api_client.permissions import CONSOLE_USERS, SEND, VIEW

logger = logging.getLogger(__name__)

type View = Callable[..., HttpResponse]

# CSRF_FAILURE_VIEW looks for this attribute to answer JSON rather than HTML.
JSON_ENDPOINT_ATTR = "json_endpoint"

# Either of them lets a user in to the console (docs/operations.md, "Who may do what").
CONSOLE_PERMISSIONS = (SEND, VIEW)
CONSOLE_GROUP = CONSOLE_USERS


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message}, **extra}, status=status, headers=headers
    )


def invalid_response(errors: dict[str, list[str]], status: int = 400) -> JsonResponse:
    return error_response(
        status,
        "invalid",
        "The input is invalid; nothing was sent. See errors for each field.",
        errors=errors,
    )


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {
        field: [str(message) for message in messages] for field, messages in form.errors.items()
    }


class BadInput(Exception):
    """Raised by a view's helpers to answer 400 (or ``status``) with per-field errors."""

    def __init__(self, errors: dict[str, list[str]], status: int = 400) -> None:
        super().__init__(errors)
        self.errors = errors
        self.status = status


def read_json(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``); raise ``BadInput`` if not."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise BadInput(
            {"__all__": ["The request body is too large (DATA_UPLOAD_MAX_MEMORY_SIZE)."]},
            status=413,
        ) from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput({"__all__": [f"The request body is not valid JSON: {exc}."]}) from None
    except RecursionError:  # "[[[[..." deeper than the decoder goes
        raise BadInput({"__all__": ["The request body is nested too deeply."]}) from None
    if not isinstance(data, dict):
        raise BadInput({"__all__": ["The request body must be a JSON object."]})
    return data


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


# --- permissions -------------------------------------------------------------------------------


def permission_name(permission: str) -> str:
    """What the admin calls ``permission`` (``Can send requests to the API``), or ``""``."""
    app_label, codename = permission.split(".", 1)
    name = (
        Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        .values_list("name", flat=True)
        .first()
    )
    return name or ""


def permission_label(permission: str) -> str:
    """``api_client.send_request (Can send requests to the API)``: the name and what it says."""
    name = permission_name(permission)
    return f"{permission} ({name})" if name else permission


def needs_sentence(permissions: tuple[str, ...], *, subject: str) -> str:
    """What a refusal says: ``subject`` needs the permission X (and what the admin calls it),
    or any one of several, and how to get it."""
    labels = " or ".join(permission_label(p) for p in permissions)
    return (
        f"{subject} needs the permission {labels}; ask an administrator to add you to the "
        f'"{CONSOLE_GROUP}" group.'
    )


class PermissionRefused(Exception):
    """Raised by a view (or ``require``) to answer 403: the user lacks every one of
    ``permissions``, any of which would do."""

    def __init__(self, permissions: tuple[str, ...], subject: str) -> None:
        super().__init__(permissions)
        self.permissions = permissions
        self.subject = subject


def require(request: HttpRequest, *permissions: str, subject: str = "") -> None:
    """Raise ``PermissionRefused`` unless the user has at least one of ``permissions``."""
    if not any(request.user.has_perm(p) for p in permissions):
        raise PermissionRefused(permissions, subject or f"{request.method} {request.path}")


def permission_denied_response(exc: PermissionRefused) -> JsonResponse:
    return error_response(
        403,
        "permission_denied",
        needs_sentence(exc.permissions, subject=exc.subject),
        required=list(exc.permissions),
    )


class ConnectionRefused(Exception):
    """Raised to answer 403: the user may not send with (or read) the connection ``name``."""

    def __init__(self, name: str, *, sending: bool) -> None:
        doing = "send with" if sending else "read the exchanges of"
        super().__init__(
            f"You may not {doing} the connection {name!r}; ask an administrator to add you "
            f"to one of its {'send' if sending else 'read'} groups."
        )


def connection_name(value: Any) -> str:
    """A ``connection`` as the input gave it (absent: ``default``); ``BadInput`` if not a name."""
    if value is None or value == "":
        return DEFAULT
    if not is_name(value):
        raise BadInput({"connection": [f"A connection name has {NAME_RULE}."]})
    return value


def connection_client(request: HttpRequest, value: Any, *, sending: bool = True) -> ApiClient:
    """The client of the connection ``value`` names, if the user may send with it (or, with
    ``sending=False``, read it): ``BadInput`` (400) when there is no usable connection of that
    name, ``ConnectionRefused`` (403) when the user may not."""
    name = connection_name(value)
    allowed = may_send if sending else may_read
    if not allowed(request.user, name):
        if not Connection.objects.filter(name=name).exists() and name != DEFAULT:
            raise BadInput({"connection": [f"There is no connection named {name!r}."]})
        raise ConnectionRefused(name, sending=sending)
    try:
        return get_client(name)
    except UnknownConnectionError as exc:
        raise BadInput({"connection": [exc.message]}) from None


def readable_rows(request: HttpRequest, rows: Any, value: Any = None) -> Any:
    """``rows`` (exchanges or jobs) of the connections the user may read, and of the one
    ``value`` names if given (403 if the user may not read it)."""
    if value:
        name = connection_name(value)
        if not may_read(request.user, name):
            raise ConnectionRefused(name, sending=False)
        return rows.filter(connection=name)
    names = readable(request.user)
    return rows if names is None else rows.filter(connection__in=sorted(names))


def json_endpoint(*methods: str, permission: str | tuple[str, ...] = ()) -> Callable[[View], View]:
    """Make a view a JSON endpoint: logged-in users only, ``methods`` only, users with
    ``permission`` only (any one of them, when it is a tuple; a view may ``require`` more for
    some input), ``BadInput`` -> 400, and any other failure a logged 500 that is JSON too.

    CSRF stays on (Django's middleware checks every POST before the view runs). The checks run
    in that order, and all of them before the view, so a refused call sends nothing.
    """
    permissions = (permission,) if isinstance(permission, str) else tuple(permission)

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return error_response(
                    401,
                    "not_authenticated",
                    "Log in to use the console's API; your session may have expired.",
                    headers={"WWW-Authenticate": 'Session realm="pocclient"'},
                    login_url=reverse("login"),
                )
            if request.method not in methods:
                return error_response(
                    405,
                    "method_not_allowed",
                    f"Method {request.method} is not allowed here; use {', '.join(methods)}.",
                    headers={"Allow": ", ".join(methods)},
                )
            try:
                if permissions:
                    require(request, *permissions)
                return view(request, *args, **kwargs)
            except PermissionRefused as exc:
                return permission_denied_response(exc)
            except ConnectionRefused as exc:
                return error_response(403, "forbidden", str(exc))
            except BadInput as exc:
                return invalid_response(exc.errors, exc.status)
            except OperationalError:
                # Busy (a SQLite write lock held past the busy timeout, a PostgreSQL lock past
                # lock_timeout) or unreachable: worth trying again, unlike a bug.
                logger.exception("%s %s failed", request.method, request.path)
                return error_response(
                    503,
                    "database_unavailable",
                    "The database is busy or unavailable, so this request could not be "
                    "completed; try again in a moment. The server log has the details under "
                    f"request id {get_request_id() or '-'}.",
                    headers={"Retry-After": "1"},
                )
            except Exception:
                # Still JSON: the page and other tools must never have to parse an HTML 500.
                logger.exception("%s %s failed", request.method, request.path)
                return error_response(
                    500,
                    "server_error",
                    "pocclient failed while handling this request; the server log has the "
                    f"details under request id {get_request_id() or '-'}.",
                )

        setattr(wrapper, JSON_ENDPOINT_ATTR, True)
        return wrapper

    return decorator


def is_json_endpoint(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and getattr(match.func, JSON_ENDPOINT_ATTR, False))


def json_page(
    rows: Any, page: int, size: int, present: Callable[[list[Any]], list[dict[str, Any]]]
) -> JsonResponse:
    """One page of ``rows`` (a queryset) as the console's list endpoints answer it. One row
    more than a page tells whether there is a next page, without counting them all."""
    found = list(rows[(page - 1) * size : page * size + 1])
    return JsonResponse(
        {
            "results": present(found[:size]),
            "page": page,
            "page_size": size,
            "has_previous": page > 1,
            "has_next": len(found) > size,
        }
    )

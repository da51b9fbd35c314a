"""Give every incoming request a request id, and return it as ``X-Request-ID``.

The id comes from the caller's ``X-Request-ID`` header when it is well-formed (a proxy or the
browser console may have chosen it), and is generated otherwise. While the view runs it is the
current request id (``api_client.context``): every API call the view makes sends it outbound
and stores it on its ``Exchange``, and every log line shows it (``api_client.log``).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from .context import REQUEST_ID_HEADER, actor_scope, request_id_scope
from .log import remember_finished


class RequestIdMiddleware:
    """Put it first in ``MIDDLEWARE`` so even an early redirect carries the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        remember_finished("")
        with request_id_scope(request.headers.get(REQUEST_ID_HEADER)) as request_id:
            request.request_id = request_id  # type: ignore[attr-defined]
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        remember_finished(request_id)
        return response


class ActorMiddleware:
    """The logged-in user is the actor of every call a request causes (after
    ``AuthenticationMiddleware``); ``Exchange.actor`` records it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        name = user.get_username() if user is not None and user.is_authenticated else ""
        with actor_scope(name):
            return self.get_response(request)

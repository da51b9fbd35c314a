"""Sending recorded exchanges again, as the admin's "replay" action does.

A replay rebuilds the call from what was stored: method, path (with its query), the headers
the caller chose, and the JSON body. The client adds a fresh token, its own headers and the
current request id, and records the replay as a new exchange. What redaction removed cannot
be sent again faithfully, so an exchange whose stored path, headers or body lost a secret is
skipped with a reason, as are token requests (the client makes those itself).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .client import ApiClient, ApiRequest, ApiResponse
from .exceptions import ApiError
from .models import Exchange
from .redaction import REDACTED
from .validation import MANAGED_HEADERS

# Headers the client sets on every call: sent again by the client, not copied from the log.
CLIENT_HEADERS = MANAGED_HEADERS | {
    "accept-encoding",
    "content-type",
    "user-agent",
    "x-request-id",
}
_REDACTED_IN_URL = "%5Bredacted%5D"


class NotReplayable(Exception):
    """An exchange that cannot be sent again; the message says why."""


def to_request(exchange: Exchange) -> ApiRequest:
    """The call ``exchange`` recorded, ready to send again, or raise ``NotReplayable``."""
    if exchange.kind != Exchange.Kind.API:
        raise NotReplayable("token requests are made by the client itself")
    if REDACTED in exchange.path or _REDACTED_IN_URL in exchange.path:
        raise NotReplayable("a secret in its query was not stored")
    headers = {
        name: value
        for name, value in exchange.request_headers.items()
        if name.lower() not in CLIENT_HEADERS
    }
    if any(value == REDACTED for value in headers.values()):
        raise NotReplayable("a secret header was not stored")
    body = None
    if exchange.request_body:
        if REDACTED in exchange.request_body:
            raise NotReplayable("a secret in its body was not stored")
        try:
            body = json.loads(exchange.request_body)
        except ValueError:
            raise NotReplayable("its stored body is not complete JSON") from None
    return ApiRequest(exchange.method, exchange.path, headers=headers or None, json=body)


@dataclass(slots=True)
class Replay:
    original: Exchange
    response: ApiResponse | None = None
    error: ApiError | None = None
    skipped: str = ""

    @property
    def outcome(self) -> str:
        if self.response is not None:
            return str(self.response.status)
        if self.error is not None:
            return self.error.code
        return "skipped"


def replay(exchanges: Iterable[Exchange], client: ApiClient, *, batch_id: str) -> list[Replay]:
    """Send each exchange again, oldest first and one at a time (order matters for writes)."""
    replays = []
    for exchange in sorted(exchanges, key=lambda e: (e.created_at, e.pk)):
        try:
            call = to_request(exchange)
        except NotReplayable as exc:
            replays.append(Replay(exchange, skipped=str(exc)))
            continue
        try:
            response = client.request(
                call.method, call.path, headers=call.headers, json=call.json, batch_id=batch_id
            )
        except ApiError as exc:
            replays.append(Replay(exchange, error=exc))
        else:
            replays.append(Replay(exchange, response=response))
    return replays

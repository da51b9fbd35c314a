"""Turn a recorded ``Exchange`` back into the request that made it, to send it again.

The log holds what was sent, redacted and with the client's own headers added. Replaying
takes those away again (credentials, framing, the client's defaults, the old request id) so
the new call gets fresh ones, and says what it could not restore: a value that was redacted
is dropped rather than sent as the text "[redacted]", and a body cut at ``LOG_BODY_LIMIT`` is
not sent at all.

The console loads the rebuilt request into its builder, warnings shown, for a person to
complete. The admin's "replay selected" action (``replay``) sends without asking anyone, so
it skips an exchange that could not be rebuilt in full, with the reason.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .client import ApiClient
from .conf import api_settings
from .context import REQUEST_ID_HEADER
from .exceptions import ApiError
from .messages import ApiRequest, ApiResponse
from .models import Exchange
from .redaction import REDACTED
from .transport import USER_AGENT
from .validation import BODYLESS_METHODS, MANAGED_HEADERS

JSON_MEDIA_TYPE = "application/json"
# Headers the client adds by itself to every call, when they still have its default value.
_CLIENT_DEFAULTS = {"user-agent": USER_AGENT, "accept": JSON_MEDIA_TYPE}
_ALWAYS_DROPPED = MANAGED_HEADERS | {"accept-encoding", REQUEST_ID_HEADER.lower()}


@dataclass(frozen=True, slots=True)
class RebuiltRequest:
    request: ApiRequest
    warnings: list[str] = field(default_factory=list)


def replay_request(exchange: Exchange, body_limit: int | None = None) -> RebuiltRequest:
    """The request to send to repeat ``exchange``, and what could not be restored.

    ``body_limit``: the ``LOG_BODY_LIMIT`` it was recorded under (default: the settings')."""
    if exchange.kind != Exchange.Kind.API:
        raise ValueError("Only API calls can be replayed; token requests are the client's own.")
    warnings: list[str] = []
    route, _, query_string = exchange.path.partition("?")
    query: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        if value == REDACTED:
            warnings.append(f"The query parameter {name} was redacted in the log.")
            continue
        previous = query.get(name)
        if previous is None:
            query[name] = value
        else:
            query[name] = [*previous, value] if isinstance(previous, list) else [previous, value]

    headers = {}
    for name, value in (exchange.request_headers or {}).items():
        lower = name.lower()
        if lower in _ALWAYS_DROPPED or _CLIENT_DEFAULTS.get(lower) == value:
            continue
        if lower == "content-type" and value == JSON_MEDIA_TYPE:
            continue  # added by the client whenever there is a JSON body
        if REDACTED in value:
            warnings.append(f"The {name} header was redacted in the log.")
            continue
        headers[name] = value

    return RebuiltRequest(
        ApiRequest(
            method=exchange.method,
            path=route.lstrip("/"),
            query=query or None,
            headers=headers or None,
            json=_body(exchange, body_limit or api_settings().LOG_BODY_LIMIT, warnings),
        ),
        warnings,
    )


def _body(exchange: Exchange, body_limit: int, warnings: list[str]) -> Any:
    text = exchange.request_body
    if not text or exchange.method in BODYLESS_METHODS:
        return None
    if len(text) >= body_limit:
        warnings.append(
            "The body was cut at POC_API_LOG_BODY_LIMIT in the log, so it was left out."
        )
        return None
    try:
        body = json.loads(text)
    except ValueError:
        warnings.append("The recorded body is not JSON, so it was left out.")
        return None
    if REDACTED in text:
        warnings.append("Some body fields were redacted in the log.")
    return body


@dataclass(slots=True)
class Replay:
    """What happened when the admin sent one exchange again."""

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
    """Send each exchange again, oldest first and one at a time (order matters for writes).

    An exchange that cannot be rebuilt in full is skipped, never sent with a gap.
    """
    replays = []
    for exchange in sorted(exchanges, key=lambda e: (e.created_at, e.pk)):
        try:
            rebuilt = replay_request(exchange)
        except ValueError as exc:
            replays.append(Replay(exchange, skipped=str(exc)))
            continue
        if rebuilt.warnings:
            replays.append(Replay(exchange, skipped=" ".join(rebuilt.warnings)))
            continue
        try:
            response = client.send(client.prepare(rebuilt.request), batch_id=batch_id)
        except ApiError as exc:
            replays.append(Replay(exchange, error=exc))
        else:
            replays.append(Replay(exchange, response=response))
    return replays

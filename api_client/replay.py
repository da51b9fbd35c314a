"""Turn a recorded ``Exchange`` back into the request that made it, to send it again.

The log holds what was sent, redacted and with the client's own headers added. Replaying
takes those away again (credentials, framing, the client's defaults, the old request id) so
the new call gets fresh ones, and says what it could not restore: a value that was redacted
is dropped rather than sent as the text "[redacted]", and a body cut at ``LOG_BODY_LIMIT`` is
not sent at all.
"""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .client import USER_AGENT, ApiRequest
from .conf import api_settings
from .context import REQUEST_ID_HEADER
from .models import Exchange
from .redaction import REDACTED
from .validation import BODYLESS_METHODS, MANAGED_HEADERS

JSON_MEDIA_TYPE = "application/json"
# Headers the client adds by itself to every call, when they still have its default value.
_CLIENT_DEFAULTS = {"user-agent": USER_AGENT, "accept": JSON_MEDIA_TYPE}
_ALWAYS_DROPPED = MANAGED_HEADERS | {"accept-encoding", REQUEST_ID_HEADER.lower()}


@dataclass(frozen=True, slots=True)
class Replay:
    request: ApiRequest
    warnings: list[str] = field(default_factory=list)


def replay_request(exchange: Exchange) -> Replay:
    """The request to send to repeat ``exchange``, and what could not be restored."""
    if exchange.kind != Exchange.Kind.API:
        raise ValueError("Only API calls can be replayed; token requests are the client's own.")
    warnings: list[str] = []
    route, _, query_string = exchange.path.partition("?")
    query: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        if value == REDACTED:
            warnings.append(f"The query parameter {name} was redacted in the log; set it again.")
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
            warnings.append(f"The {name} header was redacted in the log; set it again.")
            continue
        headers[name] = value

    return Replay(
        ApiRequest(
            method=exchange.method,
            path=route.lstrip("/"),
            query=query or None,
            headers=headers or None,
            json=_body(exchange, warnings),
        ),
        warnings,
    )


def _body(exchange: Exchange, warnings: list[str]) -> Any:
    text = exchange.request_body
    if not text or exchange.method in BODYLESS_METHODS:
        return None
    if len(text) >= api_settings().LOG_BODY_LIMIT:
        warnings.append("The body was cut at POC_API_LOG_BODY_LIMIT in the log; it was not loaded.")
        return None
    try:
        body = json.loads(text)
    except ValueError:
        warnings.append("The recorded body is not JSON; it was not loaded.")
        return None
    if REDACTED in text:
        warnings.append("Some body fields were redacted in the log; set them again.")
    return body

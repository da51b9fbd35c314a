"""The OAuth2 token endpoint: what a grant request holds, and what its answer must look like.

Grants: client_credentials (with the configured scope) and refresh_token; client
authentication by HTTP Basic (RFC 6749 2.3.1: id and secret form-encoded first) or in the
body. The provider's answer is untrusted input: ``parse_token`` checks its shape and
``token_error`` turns an error answer into the ``TokenError`` named after its RFC 6749 code.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.views.decorators.debug import sensitive_variables

from .conf import ApiSettings
from .exceptions import TokenEndpointError, TokenError
from .messages import ApiResponse
from .redaction import scrub

# A token's lifetime is clamped to this range: a provider's 1e30 must not overflow a date,
# and a token of 0.1 s would be refreshed on every call.
MIN_LIFETIME = 1
MAX_LIFETIME = 366 * 24 * 3600
MAX_TOKEN = 16_384  # characters; longer would not fit a sane header
MAX_TEXT = 300  # characters of the provider's words quoted in a message
# What an HTTP header value can carry: visible Latin-1 and spaces, no line break or control.
_SENDABLE_TOKEN = re.compile(r"[\x20-\x7e\xa0-\xff]+")


@dataclass(frozen=True, slots=True)
class Grant:
    """A new token, as the provider gave it (checked)."""

    access_token: str
    expires_in: int
    refresh_token: str
    scope: str


def client_credentials(config: ApiSettings) -> dict[str, str]:
    fields = {"grant_type": "client_credentials"}
    if config.SCOPE:
        fields["scope"] = config.SCOPE
    return fields


def refresh(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


@sensitive_variables("pair")
def basic_credentials(config: ApiSettings) -> str:
    """The value of the ``Authorization`` header that authenticates the client."""
    pair = ":".join(quote(part, safe="") for part in (config.CLIENT_ID, config.CLIENT_SECRET))
    return "Basic " + base64.b64encode(pair.encode()).decode()


@sensitive_variables("fields", "headers")
def authenticated(
    config: ApiSettings, fields: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(fields, headers)`` of a grant request, with the client's authentication added."""
    headers = {"Accept": "application/json"}
    if config.CLIENT_AUTH == "body":
        fields = {**fields, "client_id": config.CLIENT_ID, "client_secret": config.CLIENT_SECRET}
    else:
        headers["Authorization"] = basic_credentials(config)
    return fields, headers


def json_object(content: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def token_values(content: bytes) -> tuple[str, ...]:
    """The secrets a token response carries, to be scrubbed from what is stored of it."""
    data = json_object(content) or {}
    return tuple(
        str(data[key]) for key in ("access_token", "refresh_token", "id_token") if data.get(key)
    )


def read_answer(response: ApiResponse, config: ApiSettings, secrets: Iterable[str]) -> Grant:
    """The grant in the token endpoint's ``response``, or the ``TokenError`` it amounts to.

    Nothing the endpoint sends reaches a message unscrubbed (an ``error_description`` may
    echo the client secret or the Authorization header), or longer than ``MAX_TEXT``."""
    payload = json_object(response.content)
    if response.status >= 400 or payload is None or "error" in payload:
        raise token_error(response, payload, config, tuple(secrets))
    return parse_token(payload, response, config.DEFAULT_TOKEN_LIFETIME)


def token_error(
    response: ApiResponse,
    payload: dict[str, Any] | None,
    config: ApiSettings,
    secrets: tuple[str, ...],
) -> TokenError:
    code = _text((payload or {}).get("error", ""), 60, secrets)
    description = _text((payload or {}).get("error_description", ""), MAX_TEXT, secrets)
    if code and response.status < 500:
        error_class = TokenError.for_oauth_error(code)
        message = f"The token endpoint refused the request ({code})"
        message += f": {description}" if description else "."
        if error_class.default_message != TokenError.default_message:
            message += " " + error_class.default_message
        if error_class.settings_to_check:
            message += f" Check {config.named(*error_class.settings_to_check)}."
    else:
        error_class = TokenEndpointError
        message = (
            f"The token endpoint {config.TOKEN_URL} answered {response.status}"
            + (f" ({code})" if code else "")
            + " instead of a token; see the exchange log for what it sent."
        )
    return error_class(message, status=response.status, body="", exchange_id=response.exchange_id)


def _text(value: Any, limit: int, secrets: tuple[str, ...]) -> str:
    """A value from the provider as text fit for a message: scrubbed, on one line, cut."""
    text = " ".join(scrub(str(value), secrets).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_token(payload: dict[str, Any], response: ApiResponse, default_lifetime: int) -> Grant:
    """Check the provider's token response; it is untrusted input, and nothing of it that
    could be a secret is quoted in an error."""

    def fail(problem: str) -> TokenEndpointError:
        return TokenEndpointError(
            f"The token endpoint's response {problem}; see the exchange log.",
            status=response.status,
            exchange_id=response.exchange_id,
        )

    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise fail("has no access_token")
    if not _SENDABLE_TOKEN.fullmatch(access_token):
        raise fail(
            "has an access_token that an HTTP header cannot carry (a line break, a control "
            "character or a character outside Latin-1), so it was not used"
        )
    token_type = payload.get("token_type") or "Bearer"
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = repr(token_type)[:40] + ("…" if len(repr(token_type)) > 40 else "")
        raise fail(f"has token_type {shown}, and only Bearer tokens are supported")
    expires_in = payload.get("expires_in", default_lifetime)
    if expires_in is None:
        expires_in = default_lifetime
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        raise fail("has an expires_in that is not a number")
    try:
        seconds = float(expires_in)
    except ValueError:
        raise fail("has an expires_in that is not a number") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise fail("has an expires_in that is not a positive number")
    refresh_token = payload.get("refresh_token") or ""
    scope = payload.get("scope") or ""
    if not isinstance(refresh_token, str) or not isinstance(scope, str):
        raise fail("has a refresh_token or scope that is not a string")
    if len(refresh_token) > MAX_TOKEN or len(access_token) > MAX_TOKEN or len(scope) > 1000:
        raise fail(f"has a token or scope longer than {MAX_TOKEN} characters")
    lifetime = int(min(max(seconds, MIN_LIFETIME), MAX_LIFETIME))
    return Grant(access_token, lifetime, refresh_token, scope)

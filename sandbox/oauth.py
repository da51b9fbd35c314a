"""The token endpoint, ``POST /sandbox/oauth/token`` (RFC 6749).

Two grants: ``client_credentials`` and ``refresh_token``. Unlike RFC 6749 4.4.3's advice, the
client credentials grant also returns a refresh token (unless ``ISSUE_REFRESH_TOKENS`` is
off), because the client under test must exercise its refresh path against this sandbox.

Refresh tokens rotate: redeeming one marks it used with a single conditional UPDATE and issues
a new one in the same short transaction, so of two racing requests exactly one succeeds.
"""

import base64
import binascii
import hmac
from urllib.parse import unquote_plus

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from sandbox import conf
from sandbox.decorators import sandbox_view
from sandbox.models import Grant, GrantType
from sandbox.responses import json_error, json_response
from sandbox.tokens import hash_refresh_token, issue_access_token, new_refresh_token

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
BASIC_CHALLENGE = 'Basic realm="sandbox"'
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 5.2 error response: ``error`` code, description, HTTP status."""

    def __init__(
        self, error: str, description: str, *, status: int = 400, basic_challenge: bool = False
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.basic_challenge = basic_challenge

    def response(self) -> HttpResponse:
        headers = dict(NO_STORE)
        if self.basic_challenge:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        return json_error(self.status, self.error, self.description, headers=headers)


@sandbox_view(("POST",), inject=True)
def token(request: HttpRequest) -> HttpResponse:
    try:
        settings = conf.load()
        params = _form_params(request)
        client_id = _authenticate_client(request, params, settings.clients)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "The grant_type parameter is required.")
        if grant_type == GrantType.CLIENT_CREDENTIALS:
            scope = _requested_scope(params.get("scope"), settings.scopes)
            body = _issue(settings, GrantType.CLIENT_CREDENTIALS, client_id, scope)
        elif grant_type == GrantType.REFRESH_TOKEN:
            body = _refresh(settings, params, client_id)
        else:
            raise OAuthError(
                "unsupported_grant_type",
                f"Grant type {grant_type!r} is not supported; use client_credentials or "
                "refresh_token.",
            )
    except OAuthError as exc:
        return exc.response()
    return json_response(body, headers=NO_STORE)


def _form_params(request: HttpRequest) -> dict[str, str]:
    if request.content_type not in (FORM_CONTENT_TYPE, ""):
        raise OAuthError(
            "invalid_request",
            f"The token request body must be {FORM_CONTENT_TYPE}, not {request.content_type}.",
        )
    params = {}
    for name, values in request.POST.lists():
        if len(values) > 1:  # RFC 6749 3.2
            raise OAuthError("invalid_request", f"The {name} parameter is repeated.")
        params[name] = values[0]
    return params


def _authenticate_client(
    request: HttpRequest, params: dict[str, str], clients: dict[str, str]
) -> str:
    """Return the authenticated client id, by HTTP Basic or by body parameters (RFC 6749 2.3.1)."""
    header = request.headers.get("Authorization")
    body_id, body_secret = params.get("client_id"), params.get("client_secret")
    if header:
        client_id, secret = _decode_basic(header)
        if body_secret is not None:
            raise OAuthError(
                "invalid_request",
                "Authenticate the client with HTTP Basic or with client_secret in the body, "
                "not both.",
            )
        if body_id is not None and body_id != client_id:
            raise OAuthError(
                "invalid_request", "The client_id in the body differs from the one in Basic."
            )
    elif body_id is not None or body_secret is not None:
        client_id, secret = body_id or "", body_secret or ""
    else:
        raise OAuthError(
            "invalid_client",
            "Client authentication is required: HTTP Basic, or client_id and client_secret "
            "in the body.",
            status=401,
        )

    expected = clients.get(client_id)
    # Compare even for an unknown client, so timing does not reveal which ids exist.
    matches = hmac.compare_digest(secret.encode(), (expected or "\0").encode())
    if expected is None or not matches:
        raise OAuthError(
            "invalid_client",
            "Unknown client or wrong client secret.",
            status=401,
            basic_challenge=bool(header),
        )
    return client_id


def _decode_basic(header: str) -> tuple[str, str]:
    """Split a Basic header into id and secret, each form-urlencoded before base64 (2.3.1)."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError(
            "invalid_client",
            f"Unsupported client authentication scheme {scheme!r}; use Basic.",
            status=401,
            basic_challenge=True,
        )
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError(
            "invalid_client",
            "The Basic credentials are not base64 of 'client_id:client_secret'.",
            status=401,
            basic_challenge=True,
        )
    return unquote_plus(client_id), unquote_plus(secret)


def _requested_scope(raw: str | None, allowed: tuple[str, ...] | list[str]) -> str:
    """The granted scope string: everything allowed if none was asked for, else a subset."""
    if raw is None or not raw.strip():
        return " ".join(allowed)
    requested = set(raw.split())
    if unknown := requested.difference(allowed):
        raise OAuthError(
            "invalid_scope",
            f"Scope {' '.join(sorted(unknown))!r} is not allowed here; the allowed scope is "
            f"{' '.join(allowed)!r}.",
        )
    return " ".join(s for s in allowed if s in requested)


def _refresh(settings: conf.SandboxSettings, params: dict[str, str], client_id: str) -> dict:
    refresh_token = params.get("refresh_token")
    if not refresh_token:
        raise OAuthError("invalid_request", "The refresh_token parameter is required.")
    token_hash = hash_refresh_token(refresh_token)
    grant = Grant.objects.filter(refresh_token_hash=token_hash).first()
    if grant is None or grant.client_id != client_id:
        raise OAuthError("invalid_grant", "The refresh token is unknown.")
    if grant.used_at is not None:
        raise OAuthError(
            "invalid_grant", "The refresh token was already used; refresh tokens rotate."
        )
    # Validate before redeeming, so a bad scope does not burn the refresh token.
    scope = _requested_scope(params.get("scope"), grant.scope.split())
    with transaction.atomic():
        if not Grant.objects.redeem(token_hash, client_id):
            raise OAuthError(
                "invalid_grant", "The refresh token was already used; refresh tokens rotate."
            )
        return _issue(settings, GrantType.REFRESH_TOKEN, client_id, scope)


def _issue(settings: conf.SandboxSettings, grant_type: str, client_id: str, scope: str) -> dict:
    """Record the grant and return the RFC 6749 5.1 response body."""
    body: dict[str, object] = {
        "access_token": issue_access_token(client_id, scope, settings.token_lifetime),
        "token_type": "Bearer",
    }
    if not settings.omit_expires_in:
        body["expires_in"] = settings.token_lifetime
    token_hash = None
    if settings.issue_refresh_tokens:
        body["refresh_token"], token_hash = new_refresh_token()
    body["scope"] = scope
    Grant.objects.create(
        grant_type=grant_type, client_id=client_id, scope=scope, refresh_token_hash=token_hash
    )
    return body

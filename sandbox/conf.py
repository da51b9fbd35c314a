"""The sandbox's settings, read from ``settings.SANDBOX`` on every request.

Nothing is cached: tests change the dict with pytest-django's ``settings`` fixture between
requests, and the next request must see the change. Reading a small dict is cheap.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_SCOPES = "read write"
# The demo client, the pair api_client's defaults use; CLIENT_ID/CLIENT_SECRET replace it.
DEFAULT_CLIENT = ("sandbox-client", "sandbox-secret")

# RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    clients: dict[str, str]
    token_lifetime: int
    issue_refresh_tokens: bool
    omit_expires_in: bool
    scopes: tuple[str, ...]


def load() -> SandboxSettings:
    """Return the current ``settings.SANDBOX``, with defaults; raise ``ImproperlyConfigured``."""
    raw = getattr(settings, "SANDBOX", {})
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("SANDBOX must be a dict.")

    client_id = raw.get("CLIENT_ID", DEFAULT_CLIENT[0])
    clients = raw.get("CLIENTS", {client_id: raw.get("CLIENT_SECRET", DEFAULT_CLIENT[1])})
    if not isinstance(clients, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in clients.items()
    ):
        raise ImproperlyConfigured(
            'SANDBOX["CLIENTS"] must map non-empty client ids to non-empty secrets.'
        )

    lifetime = raw.get("TOKEN_LIFETIME", DEFAULT_TOKEN_LIFETIME)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 1:
        raise ImproperlyConfigured('SANDBOX["TOKEN_LIFETIME"] must be a positive int (seconds).')

    flags = {}
    for key, default in (("ISSUE_REFRESH_TOKENS", True), ("OMIT_EXPIRES_IN", False)):
        flags[key] = raw.get(key, default)
        if not isinstance(flags[key], bool):
            raise ImproperlyConfigured(f'SANDBOX["{key}"] must be True or False.')

    scope_string = raw.get("SCOPES", DEFAULT_SCOPES)
    scopes = tuple(dict.fromkeys(scope_string.split())) if isinstance(scope_string, str) else ()
    if not scopes or not all(SCOPE_TOKEN_RE.match(s) for s in scopes):
        raise ImproperlyConfigured(
            'SANDBOX["SCOPES"] must be a space-separated list of RFC 6749 scope tokens, '
            'such as "read write".'
        )

    return SandboxSettings(
        clients=dict(clients),
        token_lifetime=lifetime,
        issue_refresh_tokens=flags["ISSUE_REFRESH_TOKENS"],
        omit_expires_in=flags["OMIT_EXPIRES_IN"],
        scopes=scopes,
    )

"""The app's settings: one namespaced dict, ``settings.POC_API``, read into a frozen dataclass.

Keys (all optional; ``pocclient.settings`` fills them from ``POC_API_*`` variables):

NAME                         the connection these settings are (``default``: the environment;
                             others come from ``api_client.connections``)
BASE_URL, TOKEN_URL          where the API and its OAuth2 token endpoint live
CLIENT_ID, CLIENT_SECRET     client credentials; SCOPE is sent when not empty
CLIENT_AUTH                  "basic" (HTTP Basic, the default) or "body" (form fields)
CONNECT_TIMEOUT, READ_TIMEOUT   seconds, for every call
MAX_WORKERS                  upper bound of request_many's pool and of pooled connections
BATCH_MAX                    most requests one batch may hold (the console's POST /api/batch)
RETRIES, BACKOFF_FACTOR      urllib3 Retry for idempotent calls on connection errors and
                             429/502/503/504; RETRY_AFTER_MAX caps a server's Retry-After
TOKEN_LEEWAY                 refresh this many seconds before expiry (at most half a lifetime)
DEFAULT_TOKEN_LIFETIME       assumed when the provider omits expires_in
MAX_REQUEST_BYTES            largest request body we agree to send
MAX_RESPONSE_BYTES           largest response body read (after decompression); more fails
DEADLINE                     seconds a whole call may take, retries and waits included
RATE_LIMIT                   rules such as "40/s, POST items=15/min" (api_client.ratelimit)
LOG_BODY_LIMIT               bodies stored in the exchange log are truncated past this
EXCHANGE_RETENTION_DAYS      purge_exchanges' default age; 0 means "give --older-than"
"""

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .ratelimit import RateLimitSyntaxError, parse_rules

CLIENT_AUTH_METHODS = ("basic", "body")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    NAME: str = "default"
    BASE_URL: str = "http://127.0.0.1:8000/sandbox/api/"
    TOKEN_URL: str = "http://127.0.0.1:8000/sandbox/oauth/token"  # noqa: S105 (a URL)
    # The built-in sandbox's demo client (sandbox.conf), so the defaults run out of the box.
    CLIENT_ID: str = "sandbox-client"
    CLIENT_SECRET: str = "sandbox-secret"  # noqa: S105 (a development default)
    SCOPE: str = ""
    CLIENT_AUTH: str = "basic"
    CONNECT_TIMEOUT: float = 3.05
    READ_TIMEOUT: float = 30.0
    MAX_WORKERS: int = 16
    BATCH_MAX: int = 1000
    RETRIES: int = 3
    BACKOFF_FACTOR: float = 0.2
    RETRY_AFTER_MAX: int = 10
    TOKEN_LEEWAY: int = 60
    DEFAULT_TOKEN_LIFETIME: int = 3600
    MAX_REQUEST_BYTES: int = 1_000_000
    MAX_RESPONSE_BYTES: int = 10_000_000
    DEADLINE: float = 60.0
    RATE_LIMIT: str = ""
    LOG_BODY_LIMIT: int = 64_000
    EXCHANGE_RETENTION_DAYS: int = 30

    @property
    def base_url(self) -> str:
        """BASE_URL with exactly one trailing slash, so relative paths join under it."""
        return self.BASE_URL.rstrip("/") + "/"

    def problems(self, label: Callable[[str], str] = "POC_API_{}".format) -> list[str]:
        """What is wrong with these settings, as sentences (empty when all is well); ``label``
        spells a setting's name (the environment's variable, or a connection's field)."""
        found = []
        for name in ("BASE_URL", "TOKEN_URL"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                found.append(f"{label(name)} must be an absolute http(s) URL.")
        if not self.CLIENT_ID:
            found.append(f"{label('CLIENT_ID')} is empty.")
        if self.CLIENT_AUTH not in CLIENT_AUTH_METHODS:
            methods = ", ".join(CLIENT_AUTH_METHODS)
            found.append(f"{label('CLIENT_AUTH')} must be one of {methods}.")
        for name in ("MAX_WORKERS", "BATCH_MAX"):
            if getattr(self, name) < 1:
                found.append(f"{label(name)} must be at least 1.")
        try:
            parse_rules(self.RATE_LIMIT)
        except RateLimitSyntaxError as exc:
            found.append(f"{label('RATE_LIMIT')}: {exc}")
        if self.EXCHANGE_RETENTION_DAYS < 0:
            found.append("POC_EXCHANGE_RETENTION_DAYS must be 0 (keep) or more.")
        return found

    def named(self, *settings: str) -> str:
        """How a message names ``settings`` for a person to change: the environment's
        variables for ``default``, the connection's fields for any other."""
        if self.NAME == "default":
            return ", ".join(f"POC_API_{name}" for name in settings)
        fields = ", ".join(name.lower() for name in settings)
        return f"the connection {self.NAME!r}: {fields}"

    def with_overrides(self, **changes: Any) -> "ApiSettings":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ApiSettings(**values)


@cache
def api_settings() -> ApiSettings:
    configured = getattr(settings, "POC_API", {})
    known = {f.name for f in fields(ApiSettings)} - {"NAME"}
    unknown = set(configured) - known
    if unknown:
        # Reported by the system check too; raising here would hide the check's hint.
        configured = {k: v for k, v in configured.items() if k in known}
    return ApiSettings(**configured)


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "POC_API":
        api_settings.cache_clear()

"""The access token of each credential, shared by every thread and process."""

import hashlib
from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from ..encryption import EncryptedTextField
from .connections import scoped


def credential_key(
    token_url: str, client_id: str, scope: str = "", connection: str = "default"
) -> str:
    """The identity of one credential: one persisted token per connection, token endpoint,
    client and scope, so a token granted for one scope is never used for another, and two
    connections never share a token (nor its single flight)."""
    identity = f"{token_url}\n{client_id}"
    if scope := " ".join(sorted(set(scope.split()))):
        identity += f"\n{scope}"
    return hashlib.sha256(scoped(identity, connection).encode()).hexdigest()


def mask(secret: str) -> str:
    """Enough of a secret to tell two apart in the admin, never enough to use it."""
    if not secret:
        return ""
    return f"{secret[:4]}…{len(secret)} chars" if len(secret) > 12 else "…"


class TokenState(models.TextChoices):
    MISSING = "missing", "no token yet"
    VALID = "valid", "valid"
    EXPIRING = "expiring", "expiring soon"
    EXPIRED = "expired", "expired"
    FAILED = "failed", "failed"


class Token(models.Model):
    """The access token of one credential, shared by every thread and process.

    ``lease_owner``/``lease_until`` implement single flight (see ``api_client.tokens``). The
    access and refresh tokens are stored encrypted (``api_client.encryption``); one that cannot
    be decrypted reads as ``""``, no token, and is obtained anew.
    """

    credential_key = models.CharField(max_length=64, unique=True)
    connection = models.CharField(max_length=64, default="default")
    token_url = models.CharField(max_length=2048)
    client_id = models.CharField(max_length=255)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    scope = models.CharField(max_length=1000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    obtained_at = models.DateTimeField("last refresh", null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"token of {self.connection} for {self.client_id} at {self.token_url}"

    @property
    def masked_access_token(self) -> str:
        return mask(self.access_token)

    @property
    def lifetime(self) -> timedelta | None:
        if self.expires_at and self.obtained_at:
            return self.expires_at - self.obtained_at
        return None

    def refresh_due_at(self, leeway_seconds: int) -> datetime | None:
        """When this token should be replaced: ``leeway`` before expiry, capped at half its life.

        The cap keeps short-lived tokens in use: a 60-second token with a 60-second leeway
        would otherwise be refreshed on every call.
        """
        if not self.access_token or not self.expires_at:
            return None
        leeway = timedelta(seconds=leeway_seconds)
        if self.lifetime is not None:
            leeway = min(leeway, self.lifetime / 2)
        return self.expires_at - leeway

    def is_usable(self, leeway_seconds: int, now: datetime | None = None) -> bool:
        due = self.refresh_due_at(leeway_seconds)
        return due is not None and (now or timezone.now()) < due

    def state(self, leeway_seconds: int, now: datetime | None = None) -> TokenState:
        now = now or timezone.now()
        if not self.access_token or not self.expires_at:
            return TokenState.FAILED if self.last_error else TokenState.MISSING
        if self.expires_at <= now:
            return TokenState.FAILED if self.last_error else TokenState.EXPIRED
        if not self.is_usable(leeway_seconds, now):
            return TokenState.EXPIRING
        return TokenState.VALID

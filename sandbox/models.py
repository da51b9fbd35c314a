"""The sandbox's database state: grants issued (for rotation and counting) and demo items.

Grants live in the database rather than in memory because the sandbox sometimes runs under
gunicorn with several worker processes: a refresh token issued by one worker must be
redeemable, exactly once, in any other, and tests count grants across all of them.
"""

from django.db import models
from django.utils import timezone


class GrantType(models.TextChoices):
    CLIENT_CREDENTIALS = "client_credentials", "Client credentials"
    REFRESH_TOKEN = "refresh_token", "Refresh token"


class GrantQuerySet(models.QuerySet):
    def of_type(self, grant_type: str | None) -> "GrantQuerySet":
        return self if grant_type is None else self.filter(grant_type=grant_type)

    def unused(self) -> "GrantQuerySet":
        return self.filter(used_at__isnull=True)

    def redeem(self, refresh_token_hash: str, client_id: str) -> bool:
        """Mark the grant's refresh token used; False if it was unknown or already used.

        One conditional UPDATE, so of two requests racing with the same token exactly one
        sees a row count of 1, on SQLite and PostgreSQL alike.
        """
        updated = (
            self.unused()
            .filter(refresh_token_hash=refresh_token_hash, client_id=client_id)
            .update(used_at=timezone.now())
        )
        return updated == 1


class Grant(models.Model):
    grant_type = models.CharField(max_length=32, choices=GrantType.choices)
    client_id = models.CharField(max_length=200)
    scope = models.CharField(max_length=1000, blank=True)
    # SHA-256 hex of the refresh token issued with this grant; the token itself is never stored.
    refresh_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [
            models.Index(fields=["issued_at"], name="sandbox_grant_issued_at"),
            models.Index(fields=["grant_type"], name="sandbox_grant_type"),
        ]

    def __str__(self) -> str:
        return f"{self.grant_type} for {self.client_id} at {self.issued_at:%Y-%m-%d %H:%M:%S}"


class Item(models.Model):
    name = models.CharField(max_length=200)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name[:50]

    def as_json(self) -> dict:
        return {
            "id": self.pk,
            "name": self.name,
            "data": self.data,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

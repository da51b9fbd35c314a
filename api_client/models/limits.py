"""What the rate limit shares between processes: the calls of each rule's window, and pauses."""

from django.db import models


class RateSlot(models.Model):
    """One call counted by one rule (``key``) at ``at`` (seconds since the epoch)."""

    key = models.CharField(max_length=64)
    at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["key", "at"], name="rate_slot_idx")]

    def __str__(self) -> str:
        return f"{self.key[:8]} at {self.at:.3f}"


class RatePause(models.Model):
    """No call to the API ``key`` starts before ``until`` (seconds since the epoch)."""

    key = models.CharField(max_length=64, unique=True)
    until = models.FloatField()
    reason = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.key[:8]} paused until {self.until:.0f}: {self.reason}"

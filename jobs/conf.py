"""The jobs app's settings: ``settings.POC_JOBS``, with defaults (filled from ``POC_JOBS_*``).

LEASE_SLACK   seconds an item's lease outlives the longest call (POC_API_DEADLINE), for the
              writing back; a worker that dies gives its items up this long after a call
BEAT          seconds between a worker's signs of life and upkeep; a worker not seen for
              four beats is taken for dead (its tasks failed, its jobs given new ones)
"""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True, slots=True)
class JobSettings:
    LEASE_SLACK: float = 15.0
    BEAT: float = 5.0

    @property
    def silent_after(self) -> float:
        return 4 * self.BEAT


def job_settings() -> JobSettings:
    return JobSettings(**getattr(settings, "POC_JOBS", {}))

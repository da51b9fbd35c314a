from typing import Any

from django.core.management.base import CommandError

from jobs.actions import JobActionError, pause
from jobs.models import Job

from ._common import JobCommand


class Command(JobCommand):
    help = "Pause a running job: no new calls start, those in flight finish; resume_job goes on."
    examples = """\
        %(prog)s 12
    """

    def act(self, job: Job, **options: Any) -> None:
        try:
            job = pause(job)
        except JobActionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Done! Paused job {job.key}; `manage.py resume_job {job.key}` goes on.")

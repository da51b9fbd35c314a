from typing import Any

from django.core.management.base import CommandError

from jobs.actions import JobActionError, cancel
from jobs.models import Job

from ._common import JobCommand


class Command(JobCommand):
    help = "Cancel a job: its calls not sent yet are cancelled; the calls in flight finish."
    examples = """\
        %(prog)s 12
    """

    def act(self, job: Job, **options: Any) -> None:
        before = job.counts()["cancelled"]
        try:
            job = cancel(job)
        except JobActionError as exc:
            raise CommandError(str(exc)) from None
        cancelled = job.counts()["cancelled"] - before
        self.stdout.write(
            f"Done! Cancelled job {job.key}: {cancelled} of {job.total} calls will not be sent."
        )

from typing import Any

from django.core.management.base import CommandError

from api_client.management.base import plural
from jobs.actions import JobActionError, resume
from jobs.models import Job

from ._common import JobCommand, Snapshot


class Command(JobCommand):
    help = "Resume a paused job: the workers send its calls that are left."
    examples = """\
        %(prog)s 12
    """

    def act(self, job: Job, **options: Any) -> None:
        try:
            job = resume(job)
        except JobActionError as exc:
            raise CommandError(str(exc)) from None
        left = Snapshot.of(job).left
        self.stdout.write(f"Done! Resumed job {job.key}: {plural(left, 'call')} left to send.")
        self.warn_without_worker(job)

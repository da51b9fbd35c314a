from typing import Any

from django.core.management.base import CommandError, CommandParser

from api_client.management.base import plural
from jobs.actions import JobActionError, resend
from jobs.models import Item, Job

from ._common import JobCommand


class Command(JobCommand):
    help = "Send a job's failed (or unknown) calls again: they are planned anew and the job runs."
    examples = """\
        %(prog)s 12 --failed
        %(prog)s 12 --unknown
    """
    notes = """\
    Unknown calls may have reached the API (their worker stopped, or the connection broke,
    before an answer came): nothing sends them again on its own. Give --unknown only when you
    know they did not arrive, or that arriving twice does no harm.
    """

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--failed",
            dest="state",
            action="store_const",
            const=Item.State.FAILED,
            help="The calls that failed without an answer.",
        )
        which.add_argument(
            "--unknown",
            dest="state",
            action="store_const",
            const=Item.State.UNKNOWN,
            help="The calls whose fate is unknown (they may have reached the API).",
        )

    def act(self, job: Job, *, state: str, **options: Any) -> None:
        try:
            count = resend(job, state)
        except JobActionError as exc:
            raise CommandError(str(exc)) from None
        if not count:
            self.stdout.write(f"Job {job.key} has no {state} calls; nothing is sent again.")
            return
        job.refresh_from_db()
        then = "; it is paused: resume_job sends them" if job.state == Job.State.PAUSED else ""
        self.stdout.write(
            f"Done! Planned {plural(count, f'{state} call')} of job {job.key} again{then}."
        )
        self.warn_without_worker(job)

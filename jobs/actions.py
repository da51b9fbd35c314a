"""What a person can do to a job, from the console, the admin or a command: the one place
each is written, with the error that says why it cannot be done now."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from api_client.connections import UnknownConnectionError, settings_for

from .models import Item, Job
from .tasks import start


class JobActionError(ValueError):
    """The action does not apply to the job as it is; the message says why."""


def _locked(job: Job) -> Job:
    return Job.objects.select_for_update().get(pk=job.pk)


def pause(job: Job) -> Job:
    """Stop starting calls; those in flight finish. ``resume`` goes on."""
    with transaction.atomic():
        job = _locked(job)
        if job.state != Job.State.RUNNING:
            raise JobActionError(
                f"Job {job.key} is {job.get_state_display()}; only a running job can be paused."
            )
        job.state = Job.State.PAUSED
        job.save(update_fields=["state"])
    return job


def resume(job: Job) -> Job:
    with transaction.atomic():
        job = _locked(job)
        if job.state != Job.State.PAUSED:
            raise JobActionError(
                f"Job {job.key} is {job.get_state_display()}; only a paused job can be resumed."
            )
        try:
            settings_for(job.connection)
        except UnknownConnectionError as exc:
            raise JobActionError(f"Job {job.key} cannot resume: {exc.message}") from None
        job.state, job.error = Job.State.RUNNING, ""
        job.save(update_fields=["state", "error"])
        start(job)
    return job


def cancel(job: Job) -> Job:
    """Stop sending: every item not sent yet is cancelled; calls in flight finish."""
    with transaction.atomic():
        job = _locked(job)
        if job.state not in (Job.State.RUNNING, Job.State.PAUSED):
            raise JobActionError(
                f"Job {job.key} is {job.get_state_display()}; there is nothing to cancel."
            )
        job.items.filter(state=Item.State.PLANNED).update(
            state=Item.State.CANCELLED, finished_at=timezone.now()
        )
        job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
        job.save(update_fields=["state", "finished_at"])
    return job


def resend(job: Job, state: str) -> int:
    """Plan the job's ``state`` items (failed or unknown) again, and run the job; how many.

    Unknown items may have reached the API: only a person who knows they did not (or that it
    does no harm) should send them again, which is why nothing else ever does."""
    if state not in (Item.State.FAILED, Item.State.UNKNOWN):
        raise JobActionError(f"Only failed or unknown items can be sent again, not {state}.")
    with transaction.atomic():
        job = _locked(job)
        if job.state == Job.State.PLANNING:
            raise JobActionError(f"Job {job.key} is still being planned.")
        count = job.items.filter(state=state).update(
            state=Item.State.PLANNED, not_before=None, finished_at=None
        )
        if count and job.state != Job.State.PAUSED:
            job.state, job.finished_at = Job.State.RUNNING, None
            job.save(update_fields=["state", "finished_at"])
            start(job)
    return count

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from api_client.management.base import plural
from jobs.models import Item, Job
from jobs.progress import describe

from ._common import INTERRUPTED, JobCommand, follow, latency


class Command(JobCommand):
    help = "Show a job's state and progress: its calls by state and by status, and its latency."
    examples = """\
        %(prog)s 12
        %(prog)s 3f2a9c0d5b7e4e1fa0c2d9b8e7f6a5b4 --wait
        %(prog)s 12 --json | jq .counts
    """
    notes = """\
    ID is the job's numeric id (the admin's) or its key (send_batch prints it). --json prints
    what the console shows, as one JSON object: "state", "total", "done", "counts" (the items
    by state: planned, leased, answered, failed, unknown, cancelled), "by_status", "failing",
    "calls_per_second", "eta_seconds", "warning", ... With --wait, progress goes to standard
    error as the job runs, and the description is printed once it ends.

    Exit status: 0 when no call failed or was cancelled (so far, without --wait), 1 when any
    failed (400 or more, no answer, unknown) or was cancelled, 2 when no job has that id.
    """

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print the description as one JSON object.",
        )
        parser.add_argument(
            "--wait", action="store_true", help="Wait until the job ends, showing its progress."
        )

    def act(self, job: Job, *, as_json: bool, wait: bool, **options: Any) -> None:
        if wait:
            try:
                job, _ = follow(job, self.stderr if as_json else self.stdout, self.stderr,
                                lend_a_hand=False)  # fmt: skip
            except KeyboardInterrupt:
                raise CommandError(
                    f"Stopped waiting; job {job.key} goes on.", returncode=INTERRUPTED
                ) from None
        description = describe(job)
        if as_json:
            self.stdout.write(dumps(description))
        else:
            self.stdout.write("\n".join(for_people(job, description)))
        if description["warning"] and not wait:
            self.stderr.write(f"Warning: {description['warning']}")
        if description["failing"] or description["counts"]["cancelled"]:
            raise CommandError(trouble(job, description))


def dumps(description: dict[str, Any]) -> str:
    return json.dumps(description, indent=2, ensure_ascii=False)


def for_people(job: Job, d: dict[str, Any]) -> list[str]:
    name = f" {job.name!r}" if job.name else ""
    percent = f" ({100 * d['done'] // d['total']}%)" if d["total"] else ""
    lines = [
        f"Job {job.pk} ({job.key}){name}: {d['state_label']}.",
        f"Made {_when(job.created_at)} by {job.created_by or 'Python code'} (origin "
        f"{job.get_origin_display()}); concurrency {job.concurrency}"
        + (f", idempotency header {job.idempotency_header}" if job.idempotency_header else "")
        + ".",
        f"Progress: {d['done']} of {plural(d['total'], 'call')} done{percent}, "
        f"{d['failing']} failing"
        + (f"; {d['calls_per_second']} calls/s" if d["calls_per_second"] else "")
        + (f", about {d['eta_seconds']} s left" if d["eta_seconds"] else "")
        + ".",
        "Calls: "
        + ", ".join(f"{n} {Item.State(state).label}" for state, n in d["counts"].items() if n)
        + ".",
    ]
    if d["by_status"]:
        statuses = ", ".join(f"{status} x {n}" for status, n in d["by_status"].items())
        lines.append(f"By status: {statuses}.")
    if d["mean_ms"] is not None:
        lines.append(f"Latency: {latency(job)}, mean {d['mean_ms']} ms.")
    if job.finished_at:
        lines.append(f"Ended {_when(job.finished_at)}.")
    if job.error:
        lines.append(f"Error: {job.error}")
    return lines


def trouble(job: Job, d: dict[str, Any]) -> str:
    counts = d["counts"]
    parts = []
    if d["failing"]:
        parts.append(f"{d['failing']} failing")
    if counts["unknown"]:
        parts.append(f"{counts['unknown']} unknown (resend_job {job.key} --unknown)")
    if counts["cancelled"]:
        parts.append(f"{counts['cancelled']} cancelled")
    return f"Job {job.key} has {plural(d['total'], 'call')}: {', '.join(parts)}."


def _when(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")

"""What the job commands share: finding a job by its id or key, following it with a progress
bar (or a line per 5 %), running it in this process when no worker would, and its summary.

Not a command (its name starts with ``_``, which Django skips). While following, progress is
read in two small grouped queries per poll (items by state, and answers of 400 or more),
not with ``progress.describe``, whose latency histogram reads every answered item's duration.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError, CommandParser, OutputWrapper
from django.db import connections
from django.db.models import Count
from django.utils import timezone

from api_client.management.base import ApiCommand, bad_input, plural
from api_client.metrics import rank
from jobs.models import Item, Job
from jobs.runner import Runner
from jobs.workers import alive_workers, no_worker_warning

POLL_SECONDS = 0.25
BAR_WIDTH = 30
STEP_PERCENT = 5  # without a terminal: a line each time this much more is done
MAX_LISTED = 10  # failing items named in the summary
INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C


def find_job(ident: str) -> Job:
    """The job whose numeric id or key is ``ident``; exit status 2 when there is none."""
    ident = ident.strip()
    job = Job.objects.filter(key=ident.lower()).first()
    if job is None and ident.isdigit() and len(ident) <= 18:  # a bigint, not an overflow
        job = Job.objects.filter(pk=int(ident)).first()
    if job is None:
        raise bad_input(f"No job has the id or key {ident!r}.")
    return job


@dataclass(frozen=True, slots=True)
class Snapshot:
    """How far a job has got: its items by state, and how many calls fail so far."""

    state: str
    total: int
    counts: dict[str, int]
    failing: int  # failed + unknown + answered 400 or more

    @classmethod
    def of(cls, job: Job) -> Snapshot:
        counts = job.counts()
        refused = job.items.filter(state=Item.State.ANSWERED, status__gte=400).count()
        return cls(job.state, job.total, counts, counts["failed"] + counts["unknown"] + refused)

    @property
    def done(self) -> int:
        return sum(self.counts[state] for state in Item.FINISHED)

    @property
    def left(self) -> int:
        return self.counts["planned"] + self.counts["leased"]

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 100


def clean(job: Job, snapshot: Snapshot | None = None) -> bool:
    """Whether every call of ``job`` was answered below 400 (none failed, unknown or
    cancelled)."""
    snapshot = snapshot or Snapshot.of(job)
    return (
        job.state == Job.State.FINISHED
        and snapshot.counts["answered"] == job.total
        and not snapshot.failing
    )


class Progress:
    """A bar redrawn in place on a terminal; a line per ``STEP_PERCENT`` otherwise."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.bar = out.isatty()
        self.step = -1
        self.state = ""
        self.drawn = False

    def show(self, job: Job, snapshot: Snapshot) -> None:
        paused = "  paused" if snapshot.state == Job.State.PAUSED else ""
        failing = f"  {snapshot.failing} failing" if snapshot.failing else ""
        if self.bar:
            filled = BAR_WIDTH * snapshot.percent // 100
            rate = _rate(job, snapshot.done)
            speed = f"  {rate:.1f}/s" if rate else ""
            self.out.write(
                f"\r\x1b[2K[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{snapshot.done}/{snapshot.total} {snapshot.percent:3d}%{failing}{speed}{paused}",
                ending="",
            )
            self.out.flush()
            self.drawn = True
            return
        step = snapshot.percent // STEP_PERCENT
        if step > self.step or snapshot.state != self.state:
            self.step, self.state = step, snapshot.state
            self.out.write(
                f"{snapshot.percent:3d}% ({snapshot.done} of "
                f"{plural(snapshot.total, 'call')} done{failing.replace('  ', ', ')}){paused}"
            )

    def note(self, text: str) -> None:
        """A line above the bar (or among the lines)."""
        self.clear()
        self.out.write(text)

    def clear(self) -> None:
        if self.bar and self.drawn:
            self.out.write("\r\x1b[2K", ending="")
            self.out.flush()
            self.drawn = False


def _rate(job: Job, done: int) -> float:
    if not job.started_at or not done:
        return 0.0
    return done / max((timezone.now() - job.started_at).total_seconds(), 0.001)


class LocalRun:
    """A ``Runner`` for the job in a thread of this process (with the caller's request id
    and actor), for when no worker would run it; ``stop`` leaves the job to others."""

    def __init__(self, job: Job) -> None:
        self.runner = Runner(job.pk)
        self.error: BaseException | None = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"job-{job.pk}-runner", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # reported by the follower, in the main thread
            self.error = exc
        finally:
            connections.close_all()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        """Start no more calls; wait for those in flight and write them back."""
        self.runner.stopping.set()
        while self.thread.is_alive():
            self.thread.join(0.5)


def follow(
    job: Job, out: OutputWrapper, err: OutputWrapper, *, lend_a_hand: bool
) -> tuple[Job, Snapshot]:
    """Show ``job``'s progress until it ends; the job and its last snapshot.

    With ``lend_a_hand``, whenever the job has calls left and no worker has been seen lately,
    a ``Runner`` in this process sends them (stopped, on Ctrl-C, before ``KeyboardInterrupt``
    goes on); otherwise the no-worker warning is printed (on ``err``) while it applies.
    """
    progress = Progress(out)
    local: LocalRun | None = None
    warned = ""
    try:
        while True:
            job.refresh_from_db()
            snapshot = Snapshot.of(job)
            if local is not None and not local.alive and local.error is not None:
                raise CommandError(
                    f"Running job {job.key} in this process failed ({local.error!r}); it is "
                    "left to a worker (`manage.py db_worker`)."
                ) from local.error
            if not job.active and (local is None or not local.alive):
                progress.show(job, snapshot)
                break
            waiting = job.state == Job.State.RUNNING and snapshot.left > 0
            if lend_a_hand and waiting and (local is None or not local.alive):
                if not alive_workers():
                    if local is None:
                        progress.note(
                            "No worker is running, so this command sends the calls itself."
                        )
                    local = LocalRun(job)
                    local.start()
            elif not lend_a_hand:
                warning = no_worker_warning() if waiting else ""
                if warning and warning != warned:
                    progress.clear()
                    err.write(f"Warning: {warning}")
                warned = warning
            progress.show(job, snapshot)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        progress.clear()
        if local is not None and local.alive:
            out.write("Stopping: waiting for the calls in flight to finish ...")
            local.stop()
        raise
    finally:
        progress.clear()
    return job, snapshot


def interrupted(job: Job) -> CommandError:
    """Ctrl-C: the job goes on; how to follow or cancel it."""
    job.refresh_from_db()
    snapshot = Snapshot.of(job)
    after = "" if alive_workers() else " once a worker runs (`manage.py db_worker`)"
    return CommandError(
        f"Interrupted: job {job.key} ({snapshot.done} of {plural(job.total, 'call')} done) "
        f"goes on{after}. Follow it with `manage.py show_job {job.key} --wait`; cancel it "
        f"with `manage.py cancel_job {job.key}`.",
        returncode=INTERRUPTED,
    )


# --- the summary -----------------------------------------------------------------------------


def summary(job: Job, snapshot: Snapshot) -> list[str]:
    """Counts, the answers by status (and failures by error) and latency, in three lines."""
    counts = snapshot.counts
    sent = counts["answered"] + counts["failed"] + counts["unknown"]
    failed = snapshot.failing
    end = job.finished_at or timezone.now()
    seconds = (end - job.started_at).total_seconds() if job.started_at else 0.0
    cancelled = f", {counts['cancelled']} cancelled (not sent)" if counts["cancelled"] else ""
    left = f", {snapshot.left} not done yet" if snapshot.left else ""
    outcomes = by_outcome(job)
    return [
        f"Sent {plural(sent, 'request')} in {seconds:.2f} s (job {job.key}): "
        f"{sent - failed} succeeded, {failed} failed{cancelled}{left}.",
        f"By status: {', '.join(f'{k} x {n}' for k, n in outcomes) or 'none'}.",
        f"Latency: {latency(job)}.",
    ]


def by_outcome(job: Job) -> list[tuple[str, int]]:
    """Answers by status, then calls that got none by their error (``timeout x 2``)."""
    statuses = (
        job.items.filter(state=Item.State.ANSWERED)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    errors = (
        job.items.filter(state__in=(Item.State.FAILED, Item.State.UNKNOWN))
        .values_list("error_code", "state")
        .annotate(n=Count("id"))
        .order_by("error_code")
    )
    found: dict[str, int] = {}
    for code, state, n in errors:
        name = code or state
        found[name] = found.get(name, 0) + n
    return [(str(status), n) for status, n in statuses] + sorted(found.items())


def latency(job: Job) -> str:
    """p50 and p95 of the answered calls' durations, each one indexed row of the database."""
    answered = job.items.filter(state=Item.State.ANSWERED).exclude(duration_ms=None)
    count = answered.count()
    if not count:
        return "no answers"
    ordered = answered.order_by("duration_ms").values_list("duration_ms", flat=True)
    p50, p95 = (ordered[rank(count, percent)] for percent in (50, 95))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"


def failing_items(job: Job, limit: int = MAX_LISTED) -> list[str]:
    """The first failing items, one line each: ``item 5: 404 GET /items/9``."""
    lines = []
    answered = job.items.filter(state=Item.State.ANSWERED, status__gte=400)
    failed = job.items.filter(state__in=(Item.State.FAILED, Item.State.UNKNOWN))
    items = (
        (answered | failed)
        .order_by("index")
        .only("index", "method", "path", "state", "status", "error_code", "error")[:limit]
    )
    for item in items:
        what = f"{item.method} {item.path}"
        if item.state == Item.State.ANSWERED:
            lines.append(f"item {item.index}: {item.status} {what}")
        else:
            message = " ".join(item.error.split())
            lines.append(f"item {item.index}: {item.error_code or item.state} {what}: {message}")
    return lines


def failure(job: Job, snapshot: Snapshot) -> CommandError:
    """Exit status 1, saying what went wrong and where to look."""
    counts, failed = snapshot.counts, snapshot.failing
    if failed:
        message = (
            f"{failed} of {plural(job.total, 'request')} failed; the admin lists "
            f"{'it' if failed == 1 else 'them'} under job {job.key}."
        )
    else:
        message = f"Job {job.key} is {job.get_state_display()}."
    if counts["unknown"]:
        message += (
            f" {counts['unknown']} may have reached the API without an answer: "
            f"`manage.py resend_job {job.key} --unknown` sends them again."
        )
    if counts["cancelled"]:
        message += f" {counts['cancelled']} were cancelled before being sent."
    return CommandError(message)


class JobCommand(ApiCommand):
    """A command about one job, named by its id or key: ``act`` does the work."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", metavar="ID", help="The job's numeric id, or its key.")

    def handle(self, *, job: str, **options: Any) -> None:
        found = find_job(job)
        if self.connection and found.connection != self.connection:
            raise bad_input(
                f"Job {found.key} belongs to the connection {found.connection!r}, "
                f"not {self.connection!r}."
            )
        self.act(found, **options)

    def act(self, job: Job, **options: Any) -> None:
        raise NotImplementedError

    def warn_without_worker(self, job: Job) -> None:
        job.refresh_from_db()
        if job.state == Job.State.RUNNING and (warning := no_worker_warning()):
            self.stderr.write(f"Warning: {warning}")

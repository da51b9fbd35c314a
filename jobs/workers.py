"""The workers that run jobs, and their upkeep.

A worker is ``manage.py db_worker`` (django-tasks-db's worker, with our upkeep beside it) or,
unless ``POC_EMBEDDED_WORKER`` is off, the same worker in a thread of the web process,
started by its first request (so ``runserver`` alone, and ``make run``, run jobs).

Every ``POC_JOBS_BEAT`` seconds each worker's upkeep says it is alive (``WorkerBeat``) and
looks after the running jobs: items whose lease ran out are settled (``jobs.recovery``), and
a job with work left but no live task gets one. A task whose worker died stays RUNNING in
django-tasks-db (its issue #5, no retries): the upkeep marks it failed, so that the job's new
task is the one that runs. A job left by a process that died is thus taken up by the next
worker that starts, embedded or not; when none has been seen for four beats,
``no_worker_warning`` says so, and what starts one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

from .conf import job_settings
from .models import Item, Job, WorkerBeat
from .recovery import reap

logger = logging.getLogger(__name__)

TASK_PATH = "jobs.tasks.run_job"
NO_WORKER = (
    "No worker has been seen for {seconds} s, so jobs wait: start one with "
    "`manage.py db_worker` (or run the web server with POC_EMBEDDED_WORKER=1)."
)


def beat(worker_id: str, *, embedded: bool) -> None:
    WorkerBeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "host": socket.gethostname()[:100],
            "pid": os.getpid(),
            "embedded": embedded,
            "last_seen": timezone.now(),
        },
    )


def alive_workers() -> set[str]:
    since = timezone.now() - timedelta(seconds=job_settings().silent_after)
    return set(WorkerBeat.objects.filter(last_seen__gte=since).values_list("worker_id", flat=True))


def no_worker_warning() -> str:
    """What to say where a job waits, when no worker has been seen lately ("" if one has)."""
    return "" if alive_workers() else NO_WORKER.format(seconds=int(job_settings().silent_after))


def jobs_with_a_task() -> set[int]:
    """Jobs that have a task waiting, or running on a live worker; tasks running on a dead
    worker are marked failed on the way."""
    from django_tasks_db.models import DBTaskResult

    alive = alive_workers()
    covered, dead = set(), []
    for pk, status, args_kwargs, worker_ids in DBTaskResult.objects.filter(
        task_path=TASK_PATH, status__in=("READY", "RUNNING")
    ).values_list("pk", "status", "args_kwargs", "worker_ids"):
        job_id = (args_kwargs or {}).get("args", [None])[0]
        if status == "RUNNING" and (not worker_ids or worker_ids[-1] not in alive):
            dead.append(pk)
            continue
        covered.add(job_id)
    if dead:
        DBTaskResult.objects.filter(pk__in=dead, status="RUNNING").update(
            status="FAILED", finished_at=timezone.now()
        )
        logger.warning("Marked %d task(s) of dead workers as failed", len(dead))
    return covered


def upkeep() -> None:
    """Settle expired leases of running jobs, and give a task to each that needs one."""
    from .tasks import start

    covered = jobs_with_a_task()
    for job in Job.objects.filter(state=Job.State.RUNNING):
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=job.pk)
            reap(locked)
        waiting = job.items.filter(state__in=(Item.State.PLANNED, Item.State.LEASED)).exists()
        if job.pk not in covered:
            if waiting:
                start(job, parallel=1)
                logger.info("Job %s had no live runner: a task is queued", job.key)
            else:
                Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
                    state=Job.State.FINISHED, finished_at=timezone.now()
                )


class Upkeep(threading.Thread):
    """The beat and the upkeep, every beat, beside a worker."""

    def __init__(self, worker_id: str, *, embedded: bool) -> None:
        super().__init__(name="jobs-upkeep", daemon=True)
        self.worker_id, self.embedded = worker_id, embedded
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                close_old_connections()
                try:
                    beat(self.worker_id, embedded=self.embedded)
                    upkeep()
                except DatabaseError:
                    logger.warning("Jobs upkeep failed; trying again soon", exc_info=True)
                self.stopped.wait(job_settings().BEAT)
        finally:
            connections.close_all()


# django-tasks-db's worker runs one task at a time, and a job's task runs until the job ends:
# with one thread, a long job on one connection would hold back every other job. The threads
# share the process's pool (``POC_API_MAX_WORKERS`` calls in flight), taking turns.
EMBEDDED_THREADS = 4


class EmbeddedWorker:
    """django-tasks-db's worker in ``EMBEDDED_THREADS`` threads of this process (one worker
    id: they live and die with it), with its upkeep."""

    def __init__(self, threads: int = EMBEDDED_THREADS) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        from .runner import worker_name

        self.worker_id = worker_name()
        self.workers = [
            Worker(
                queue_names=["default"],
                excluded_queue_names=[],
                interval=1.0,
                batch=False,
                backend_name="default",
                startup_delay=False,
                max_tasks=None,
                worker_id=self.worker_id,
            )
            for _ in range(threads)
        ]
        self.upkeep = Upkeep(self.worker_id, embedded=True)
        self.threads = [
            threading.Thread(target=self._run, args=(worker,), name=f"jobs-worker-{n}", daemon=True)
            for n, worker in enumerate(self.workers)
        ]

    @property
    def worker(self) -> Any:
        return self.workers[0]

    def set_interval(self, seconds: float) -> None:
        for worker in self.workers:
            worker.interval = seconds

    def start(self) -> None:
        self.upkeep.start()
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        for worker in self.workers:
            worker.running = False
        self.upkeep.stopped.set()
        for thread in self.threads:
            thread.join(timeout)

    def _run(self, worker: Any) -> None:
        try:
            worker.run()  # never installs signal handlers; ends when running is False
        finally:
            connections.close_all()


_embedded: EmbeddedWorker | None = None
_embedded_guard = threading.Lock()


def start_embedded_worker(**kwargs: Any) -> None:
    """``request_started``: the first request of a web process starts its worker."""
    global _embedded
    if _embedded is not None or not getattr(settings, "POC_EMBEDDED_WORKER", False):
        return
    with _embedded_guard:
        if _embedded is None:
            _embedded = EmbeddedWorker()
            _embedded.start()
            logger.info("Started the embedded jobs worker %s", _embedded.worker_id)


def stop_embedded_worker() -> None:
    global _embedded
    with _embedded_guard:
        worker, _embedded = _embedded, None
    if worker is not None:
        worker.stop()

"""The background task that runs a job, on Django's Tasks framework.

``django-tasks-db`` (the default backend) keeps tasks in this database, so nothing else has
to run: ``manage.py db_worker`` processes and the web process's own worker take them. A job
is given as many tasks as it can use workers (``parallel``): each runs ``jobs.runner.Runner``
until nothing is left for it to claim. The backend has no retries, and a task whose worker
dies stays RUNNING; neither matters here: items carry their own leases, and the workers'
upkeep (``jobs.workers``) gives a job whose runners are gone a new task.
"""

import math
from typing import Any

from django.tasks import task

from .models import Job

MAX_PARALLEL = 8


@task()
def run_job(job_id: int) -> dict[str, Any]:
    from .runner import Runner

    return Runner(job_id).run()


def start(job: Job, parallel: int | None = None) -> None:
    """Enqueue the tasks that run ``job`` (in the caller's transaction, if any)."""
    from api_client.connections import UnknownConnectionError, settings_for

    if parallel is None:
        try:
            parallel = math.ceil(job.concurrency / settings_for(job.connection).MAX_WORKERS)
        except UnknownConnectionError:  # the runner says why, and pauses the job
            parallel = 1
    for _ in range(max(1, min(parallel, MAX_PARALLEL))):
        run_job.enqueue(job.pk)

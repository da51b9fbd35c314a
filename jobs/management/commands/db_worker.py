"""``manage.py db_worker``: django-tasks-db's worker, with the jobs' upkeep beside it.

The same command and options as django-tasks-db's (this app comes first in INSTALLED_APPS,
so its command is the one ``manage.py`` runs); it also says it is alive every few seconds and
looks after running jobs (``jobs.workers``), and it does not reload on code changes unless
asked (``--reload``): a reload would cut the calls in flight.
"""

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as TasksWorkerCommand

from jobs.runner import worker_name
from jobs.workers import Upkeep


class Command(TasksWorkerCommand):
    help = (
        "Run the background worker that runs jobs (django-tasks-db's db_worker, with the "
        "jobs' upkeep: liveness, expired leases, jobs left by dead workers)."
    )

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.set_defaults(reload=False, worker_id=worker_name())

    def handle(self, *args: Any, worker_id: str, **options: Any) -> None:
        upkeep = Upkeep(worker_id, embedded=False)
        upkeep.start()
        try:
            super().handle(*args, worker_id=worker_id, **options)
        finally:
            upkeep.stopped.set()

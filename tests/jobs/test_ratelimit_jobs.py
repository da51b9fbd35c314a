"""The rate limit and the provider's pauses, seen from the API's side, while three real
``manage.py db_worker`` processes run one job and share them through the database; and what
a job makes of the calls they hold back (planned again, never failed).

The hostile API runs in a thread of the test process and stamps each request with the moment
it arrived (one clock for every sender): the assertions are about those moments, which are
what a provider counts, not about what the client believes it did.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from api_client.client import ApiClient
from api_client.conf import api_settings
from api_client.models import Exchange, RateSlot
from api_client.ratelimit import PAUSE_READ_EVERY, parse_rules
from jobs.models import Item, Job, WorkerBeat
from jobs.planning import plan
from jobs.runner import Runner
from jobs.tasks import start
from jobs.workers import TASK_PATH
from tests.api_client.test_ratelimit import WINDOW, sliding_max
from tests.helpers.hostile import CONFIG, HostileServer
from tests.helpers.processes import ROOT, database_url_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 3
CONCURRENCY = 12  # the job's; each worker holds at most POC_API_MAX_WORKERS=4 of them
# From the moment the API answers a 429 until no sender starts another call: the answer's way
# back, the pause's commit (behind the database's other writers, on SQLite) and calls already
# let through arriving. Some 50 ms here; 0.5 s is room for a slow CI machine, and still leaves
# 1.5 s of the 2 s pause in which not one call may arrive (at 20/s, 30 would without it).
GRACE = 0.5


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


@contextmanager
def db_workers(server: HostileServer, logs: Path, **environ: str) -> Iterator[None]:
    """``WORKERS`` db_worker processes against ``server``, alive (their beats seen) when the
    block begins, killed when it ends."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "POC_API_BASE_URL": f"{server.url}/api/",
        "POC_API_TOKEN_URL": f"{server.url}/oauth/token",
        "POC_API_CLIENT_ID": CONFIG["client_id"],
        "POC_API_CLIENT_SECRET": CONFIG["client_secret"],
        "POC_API_RETRIES": "0",
        "POC_API_MAX_WORKERS": str(CONCURRENCY // WORKERS),
        "POC_JOBS_BEAT": "0.5",
        "POC_EMBEDDED_WORKER": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        **environ,
    }
    command = [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval",
               "0.1", "-v", "0"]  # fmt: skip
    processes = []
    try:
        for n in range(WORKERS):
            with (logs / f"worker-{n}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
                )
        wait_for(lambda: WorkerBeat.objects.count() >= WORKERS, 60, "the workers' first beat")
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


def run_job(server: HostileServer, calls: list[dict], timeout: float = 120) -> Job:
    """Plan ``calls`` as one job for all the workers, and wait for it to finish."""
    client = ApiClient(api_settings().with_overrides(BASE_URL=f"{server.url}/api/"))
    with transaction.atomic():  # the workers' upkeep sees the job and its tasks at once
        job = plan(client, list(enumerate(calls, 1)), concurrency=CONCURRENCY)
        start(job, parallel=WORKERS)
    client.close()

    def finished() -> bool:
        job.refresh_from_db()
        return job.state == Job.State.FINISHED

    wait_for(finished, timeout, f"the end of the job ({job.counts()})")
    tasks = DBTaskResult.objects.filter(task_path=TASK_PATH, status__in=("READY", "RUNNING"))
    wait_for(lambda: not tasks.exists(), 30, "the end of the job's tasks")
    return job


def sent_by_each_worker() -> list[int]:
    """Calls each task of the job sent, by worker; one task per worker process."""
    tasks = DBTaskResult.objects.filter(task_path=TASK_PATH, status="SUCCESSFUL")
    by_worker = {task.worker_ids[-1]: task.return_value["sent"] for task in tasks}
    return sorted(by_worker.values())


def arrivals(server: HostileServer, prefix: str = "/api/") -> list[float]:
    return [r.time for r in server.received if r.path.startswith(prefix)]


def test_three_workers_never_exceed_the_shared_limits_at_the_api(hostile, tmp_path):
    rules = "20/s, POST limited/*=5/s"
    calls = [
        {"method": "POST", "path": f"limited/{n}", "json": {}}
        if n % 4 == 0
        else {"method": "GET", "path": f"open/{n}"}
        for n in range(120)
    ]
    with db_workers(hostile, tmp_path, POC_API_RATE_LIMIT=rules):
        job = run_job(hostile, calls)

    received = [r.path for r in hostile.received if r.path.startswith("/api/")]
    assert sorted(received) == sorted(f"/api/{call['path']}" for call in calls)  # each once
    assert job.counts()["answered"] == len(calls)
    assert len(sent_by_each_worker()) == WORKERS and min(sent_by_each_worker()) > 0
    assert sliding_max(arrivals(hostile), WINDOW) <= 20
    assert sliding_max(arrivals(hostile, "/api/limited/"), WINDOW) <= 5
    # The pattern's rule counted its calls only; the rule for all calls counted every one.
    every, limited = parse_rules(rules, f"{hostile.url}/api/")
    assert RateSlot.objects.filter(key=limited.key).count() == len(calls) // 4
    assert RateSlot.objects.filter(key=every.key).count() == len(calls)


@pytest.mark.parametrize(
    ("rules", "reach"), [("20/s", 0.0), ("", PAUSE_READ_EVERY)], ids=["limited", "unlimited"]
)
def test_after_a_429_no_worker_sends_until_the_pause_ends(hostile, tmp_path, rules, reach):
    """Every sender waits out a 429's Retry-After, and the items it refused are sent again
    later, none failed. Without rules a process learns another's pause within ``reach``
    (``PAUSE_READ_EVERY``), when it does not get a 429 of its own first."""
    hostile.configure(storm_after=30, storm_seconds=3.0, storm_headers={"Retry-After": "2"})
    calls = [{"method": "POST", "path": f"items/{n}", "json": {"n": n}} for n in range(100)]
    with db_workers(hostile, tmp_path, POC_API_RATE_LIMIT=rules):
        job = run_job(hostile, calls)

    refusals = list(hostile.refusals)
    everything = arrivals(hostile)
    # A refusal's moment is taken before its answer leaves, so its pause (from the moment the
    # answer came back) ends after ``answered + 2``: nothing may arrive before, once GRACE
    # (and without rules, the time to learn another process's pause) has passed.
    early = [
        round(moment - answered, 3)
        for _, answered in refusals
        for moment in everything
        if answered + reach + GRACE < moment < answered + 2.0
    ]
    assert refusals and not early, f"{len(early)} calls arrived within a pause: {early[:10]}"
    if rules:
        assert sliding_max(everything, WINDOW) <= 20

    # Not one item failed: each refused call was sent again, and answered once.
    refused = {arrived for arrived, _ in refusals}
    answered_once = Counter(
        r.path for r in hostile.received if r.path.startswith("/api/") and r.time not in refused
    )
    assert answered_once == Counter(f"/api/{call['path']}" for call in calls)
    items = Item.objects.filter(job=job)
    assert job.counts()["answered"] == len(calls) and {item.status for item in items} == {200}
    assert sum(item.sends - 1 for item in items) == len(refusals)
    assert len(sent_by_each_worker()) == WORKERS and min(sent_by_each_worker()) > 0


def test_items_the_limit_will_not_let_wait_are_planned_again_not_failed(hostile_config, hostile):
    client = hostile_config(RATE_LIMIT="4/s", RETRY_AFTER_MAX=0)  # any wait: RetryLaterError
    calls = [{"method": "POST", "path": f"items/{n}", "json": {}} for n in range(10)]
    job = plan(client, list(enumerate(calls, 1)), concurrency=4)

    Runner(job.pk, client=client).run()

    job.refresh_from_db()
    counts = job.counts()
    assert (job.state, counts["answered"], counts["failed"]) == (Job.State.FINISHED, 10, 0)
    received = [r.path for r in hostile.received if r.path.startswith("/api/")]
    assert sorted(received) == sorted(f"/api/{call['path']}" for call in calls)
    assert sliding_max(arrivals(hostile), WINDOW) <= 4
    held_back = Exchange.objects.filter(batch_id=job.key, error_code="retry_later")
    assert held_back.exists() and not held_back.exclude(status=None).exists()  # none sent

"""Jobs survive kill -9: real worker processes (and a web server running its embedded worker)
are SIGKILLed mid-job; another worker takes the job up. The hostile API, in a process of its
own, logs every request it receives before it answers.

After the crash, for POST items: none reached the API twice, and every one that did is
answered or unknown. For GET items: every one ends answered. Always: the planned calls add
up to answered + failed + unknown + cancelled.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from api_client import tokens
from api_client.client import ApiClient
from api_client.conf import api_settings
from bench.common import project_server
from jobs.models import Item, Job
from jobs.planning import plan
from jobs.tasks import start
from tests.helpers.hostile import CONFIG, hostile_process
from tests.helpers.processes import ROOT, database_url_for_subprocess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.heavy]

CALLS = 200


def environ(url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url_for_subprocess(),
        "POC_API_BASE_URL": f"{url}/api/",
        "POC_API_TOKEN_URL": f"{url}/oauth/token",
        "POC_API_CLIENT_ID": CONFIG["client_id"],
        "POC_API_CLIENT_SECRET": CONFIG["client_secret"],
        "POC_API_RETRIES": "0",
        "POC_API_DEADLINE": "3",
        "POC_API_MAX_WORKERS": "8",
        "POC_JOBS_LEASE_SLACK": "2",
        "POC_JOBS_BEAT": "0.5",
        "POC_EMBEDDED_WORKER": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
    }


def worker(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-startup-delay",
            "--interval",
            "0.2",
            "-v",
            "0",
        ],
        cwd=ROOT,
        env={**os.environ, **environ(url)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def received(log: Path) -> Counter[str]:
    """How often each item's call (its ``n``) reached the API."""
    found: Counter[str] = Counter()
    if log.exists():
        for line in log.read_text().splitlines():
            path = json.loads(line)["path"]
            if "n=" in path:
                found[path.rsplit("n=", 1)[1].split("&")[0]] += 1
    return found


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def planned_job(url: str, settings, method: str) -> Job:
    settings.POC_API = {
        **settings.POC_API,
        "BASE_URL": f"{url}/api/",
        "TOKEN_URL": f"{url}/oauth/token",
        "CLIENT_ID": CONFIG["client_id"],
        "CLIENT_SECRET": CONFIG["client_secret"],
    }
    tokens.clear_cache()
    client = ApiClient(api_settings())
    calls = [
        {
            "method": method,
            "path": "slow",
            "query": {"delay": 0.1, "n": n},
            **({"json": {"n": n}} if method == "POST" else {}),
        }
        for n in range(CALLS)
    ]
    try:
        return plan(client, list(enumerate(calls, 1)), concurrency=8)
    finally:
        client.close()


def finished(job: Job) -> bool:
    job.refresh_from_db()
    return job.state == Job.State.FINISHED


def assert_accounted_for(job: Job) -> dict[str, int]:
    counts = job.counts()
    assert counts["planned"] == counts["leased"] == 0, counts
    assert sum(counts.values()) == CALLS == job.total
    return counts


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_worker_killed_mid_job_loses_nothing_and_sends_no_post_twice(tmp_path, settings, method):
    log = tmp_path / "received.jsonl"
    with hostile_process(log) as url:
        job = planned_job(url, settings, method)
        start(job, parallel=2)
        doomed, survivor = worker(url), worker(url)
        try:
            wait_for(lambda: sum(received(log).values()) >= 40, timeout=60)
            kill(doomed)
            wait_for(lambda: finished(job), timeout=120)
        finally:
            kill(survivor)
            if doomed.poll() is None:
                kill(doomed)

    counts = assert_accounted_for(job)
    reached = received(log)
    items = {str(i.index): i for i in Item.objects.filter(job=job)}
    if method == "POST":
        assert max(reached.values()) == 1, "a POST reached the API twice"
        for n in reached:
            assert items[n].state in (Item.State.ANSWERED, Item.State.UNKNOWN), items[n]
    else:
        assert counts["answered"] == CALLS, counts
        assert set(reached) == set(items)


def test_a_web_server_killed_while_its_embedded_worker_runs_a_job(tmp_path, settings):
    log = tmp_path / "received.jsonl"
    with hostile_process(log) as url:
        job = planned_job(url, settings, "POST")
        start(job, parallel=1)
        with project_server(threads=4, **{**environ(url), "POC_EMBEDDED_WORKER": "1"}) as app:
            requests.get(f"{app.url}/accounts/login/", timeout=30)  # starts its worker
            wait_for(lambda: sum(received(log).values()) >= 40, timeout=60)
            app.kill()
        resumed = worker(url)
        try:
            wait_for(lambda: finished(job), timeout=120)
        finally:
            kill(resumed)

    assert_accounted_for(job)
    reached = received(log)
    assert max(reached.values()) == 1, "a POST reached the API twice"
    states = dict(Item.objects.filter(job=job).values_list("index", "state"))
    assert all(states[int(n)] in (Item.State.ANSWERED, Item.State.UNKNOWN) for n in reached)

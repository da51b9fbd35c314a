"""The reason pocclient exists: many threads and processes, one database, no crash.

These run on a real database file (SQLite in WAL mode, see settings) or on PostgreSQL, with
real threads and processes talking HTTP to the live sandbox.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.utils import timezone

from api_client import tokens
from api_client.models import Exchange, Token
from sandbox import stats
from sandbox.models import Item
from tests.helpers.processes import database_url_for_subprocess

ROOT = Path(__file__).resolve().parents[2]


def expire_stored_token() -> None:
    Token.objects.update(expires_at=timezone.now())
    tokens.clear_cache()


def test_32_threads_finding_the_token_expired_cause_one_grant(api):
    api.get("whoami")
    expire_stored_token()
    grants = stats.grant_count()
    barrier = threading.Barrier(32)
    got: list[str] = []

    def race() -> None:
        barrier.wait()
        try:
            got.append(api.tokens.get_token())
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert stats.grant_count() == grants + 1
    assert len(got) == 32 and len(set(got)) == 1


def test_3_processes_of_8_threads_cause_one_grant(api, api_config):
    api.get("whoami")
    expire_stored_token()
    grants = stats.grant_count()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "POC_API_BASE_URL": api_config.BASE_URL,
        "POC_API_TOKEN_URL": api_config.TOKEN_URL,
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    start_at = time.time() + 4  # time for three interpreters to start Django
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.token_race", "8", str(start_at)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]

    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outputs]
    got = [token for out, _ in outputs for token in json.loads(out)]
    assert len(got) == 24
    assert not [t for t in got if t.startswith("error")], got
    assert len(set(got)) == 1
    assert stats.grant_count() == grants + 1


def open_database_connections() -> int:
    if connection.vendor == "sqlite":
        path = os.path.realpath(connection.settings_dict["NAME"])
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == path)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.timeout(600)
def test_original_crash_scenario_2000_calls_at_concurrency_16(api, caplog):
    """Calls built from ORM objects read here go to pool workers, which get the token (the
    first one from the database) and call the API; the batch's writer thread logs exchanges.

    In the Flask proof of concept this raised "SQLite objects created in a thread can only
    be used in that same thread" or "database is locked".
    """
    Item.objects.bulk_create(Item(name=f"item {n}") for n in range(20))
    items = list(Item.objects.all())  # read in this (the "request") thread
    requests = [{"method": "GET", "path": f"items/{items[n % len(items)].pk}"} for n in range(2000)]
    worker_connections = []

    def remember(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("api-worker"):
            worker_connections.append(connection)

    connection_created.connect(remember)
    try:
        results = api.request_many(requests, concurrency=16)
    finally:
        connection_created.disconnect(remember)

    failures = [r.error for r in results if r.error is not None]
    assert failures == []
    assert [r.status for r in results] == [200] * 2000
    assert [r.index for r in results] == list(range(2000))
    assert Exchange.objects.filter(kind=Exchange.Kind.API).count() == 2000
    assert len({r.exchange_id for r in results}) == 2000
    for text in ("ProgrammingError", "database is locked", "same thread"):
        assert text not in caplog.text
    # Each pool worker opened at most one connection (only to read the token) and closed it
    # when it ran out of work. (The ledger's writer keeps its one connection until idle; the
    # hygiene test counts it.)
    assert 1 <= len(worker_connections) <= 16
    assert all(conn.connection is None for conn in worker_connections)
    # Count the whole process's file descriptors on the database. The sandbox runs in this
    # process too, and its server threads hold a connection while our keep-alive HTTP
    # connections last: end those. SQLite defers closing a file descriptor while another
    # connection of the process holds a lock on the file: close this thread's connection too.
    api.close()
    connection.close()
    deadline = time.monotonic() + 10
    while open_database_connections() > 16 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_database_connections() <= 16


def test_model_instances_cross_threads_and_are_saved_by_workers(api):
    from api_client.pool import iter_in_threads

    Item.objects.bulk_create(Item(name=f"item {n}") for n in range(40))
    items = list(Item.objects.all())

    def touch(item: Item) -> int:
        response = api.get(f"items/{item.pk}")
        item.name = response.json()["name"] + " (seen)"
        item.save(update_fields=["name"])
        return response.status

    outcomes = dict(iter_in_threads(touch, items, workers=8))

    assert set(outcomes.values()) == {200}
    assert Item.objects.filter(name__endswith="(seen)").count() == 40

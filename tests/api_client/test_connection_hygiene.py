"""Connection hygiene: 10,000 fan-out calls leave file descriptors, sockets, database
connections and threads exactly where they were.

The API is bench/stub_api.py in its own process, so that what is counted here is the client
alone, and fast enough that 10,000 calls take seconds.
"""

import os
import threading
from pathlib import Path

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created

from api_client import ledger, ratelimit
from api_client.client import ApiClient
from api_client.ledger import LEDGER
from api_client.models import Exchange
from bench.common import stub_api
from tests.helpers.sockets import open_fds, sockets_to
from tests.helpers.waiting import settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.heavy]

BATCHES, CALLS = 10, 1000


def database_handles() -> int:
    """This process's handles on the database. SQLite: descriptors on the database file (SQLite
    keeps the descriptor of a closed connection for reuse while another connection of the
    process is open, so this stays flat rather than dropping to zero). PostgreSQL: this
    process's sockets to the server (``pg_stat_activity`` would also count other processes'
    sessions, such as a worker process an earlier test left ending)."""
    if connection.vendor == "sqlite":
        path = os.path.realpath(connection.settings_dict["NAME"])
        return sum(1 for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) == path)
    return sockets_to(int(connection.settings_dict["PORT"] or 5432))


def test_10000_fan_out_calls_leave_descriptors_connections_and_threads_flat(
    api_config, monkeypatch
):
    # The provider's pauses are read once, in the warm-up, however long the batches take.
    monkeypatch.setattr(ratelimit, "PAUSE_READ_EVERY", 3600)
    # The ledger's writer opens its connection in the warm-up and keeps it however long the
    # batches take on a slow machine: a connection past CONN_MAX_AGE, or a writer idle for
    # IDLE_SECONDS while the pool's workers end, would reconnect and count as opened below.
    LEDGER.stop()
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", None)
    monkeypatch.setattr(ledger, "IDLE_SECONDS", 3600.0)
    opened = []

    def remember(sender, connection, **kwargs):
        opened.append(connection)

    with stub_api() as root:
        port = int(root.rsplit(":", 1)[1])
        client = ApiClient(
            api_config.with_overrides(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token")
        )
        calls = [{"method": "GET", "path": f"items/{n}"} for n in range(CALLS)]
        # Warm up: the token, and slow calls that keep every worker busy at once, so the pool
        # holds as many connections as there are workers (it never needs more). This thread's
        # database connection is open throughout, as in a web request: with it open, SQLite
        # keeps the descriptors of the workers' closed connections for the next ones to reuse.
        connection.ensure_connection()
        client.request_many([{"method": "GET", "path": "x", "query": {"delay": 0.1}}] * 32)

        def sample() -> tuple[int, int, int, int]:
            return open_fds(), sockets_to(port), database_handles(), threading.active_count()

        baseline = sample()
        connection_created.connect(remember)
        samples = []
        try:
            for _ in range(BATCHES):
                results = client.request_many(calls)
                assert [r.status for r in results] == [200] * CALLS
                # At once: the pool's idle workers end after IDLE_SECONDS, the ledger's writer
                # closes its connection after its own.
                samples.append(settled(sample, baseline))
        finally:
            connection_created.disconnect(remember)
        client.close()
        after_close = sockets_to(port)

    assert baseline[1] == api_config.MAX_WORKERS  # pooled HTTP connections, reused
    assert samples == [baseline] * BATCHES
    # Workers do not touch the database (the token and the pauses are cached); the process's
    # ledger writer kept the one connection it opened in the warm-up, and closes it when it stops.
    assert opened == []
    LEDGER.stop()
    assert after_close == 0
    assert Exchange.objects.filter(kind=Exchange.Kind.API).count() == CALLS * BATCHES + 32


def test_close_closes_pooled_connections_even_while_a_response_is_referenced(api_config):
    """urllib3 2 leaves closing to the garbage collector; a traceback in a log handler, say,
    can keep a response (and with it the pool) alive indefinitely."""
    with stub_api() as root:
        port = int(root.rsplit(":", 1)[1])
        client = ApiClient(
            api_config.with_overrides(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token")
        )
        client.request_many([{"method": "GET", "path": "x"}] * 32)
        kept = client.transport._pools.urlopen("GET", f"{root}/api/x")  # holds its pool
        assert sockets_to(port) >= 1

        client.close()

        assert sockets_to(port) == 0
        assert kept.status == 200

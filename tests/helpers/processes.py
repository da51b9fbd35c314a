"""What tests need to run pocclient code in other OS processes against the test database."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection, connections

from api_client.ledger import LEDGER

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_subprocess() -> str:
    """The test database as a DATABASE_URL, so child processes share it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def interruptible(args: list[str], **popen: object) -> subprocess.Popen:
    """``Popen`` a child that turns SIGINT into ``KeyboardInterrupt``, as from a terminal.

    A shell without job control starts a background command (a CI run, ``make test &``) with
    SIGINT ignored, and a child inherits that, so Ctrl-C tests would see nothing. A handler, unlike
    an ignored signal, is reset to the default across exec, and Python then installs its own.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def write_lock_held_by_another_process(
    database_url: str | None = None,
) -> Iterator[subprocess.Popen]:
    """Another process holds the write lock of the test database (or of ``database_url``)
    until the block ends (see hold_lock); the block gets the process."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url or database_url_for_subprocess(),
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.hold_lock"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if line.strip() != "locked":
            process.kill()
            raise RuntimeError(f"the lock holder failed: {process.stderr.read()}")
        yield process
    finally:
        process.stdin.close()  # the holder commits its empty transaction and exits
        process.wait(timeout=30)


@contextmanager
def writers_give_up_after(seconds: float) -> Iterator[None]:
    """Database connections opened in the block wait at most ``seconds`` for a write lock
    (SQLite's busy timeout, PostgreSQL's lock_timeout) instead of the configured 20 s."""
    options = connection.settings_dict["OPTIONS"]
    key, value = (
        ("timeout", seconds)
        if connection.vendor == "sqlite"
        else ("options", f"-c lock_timeout={round(seconds * 1000)}")
    )
    missing = object()
    saved = options.get(key, missing)
    options[key] = value
    connections.close_all()  # this thread reconnects with the short wait
    LEDGER.stop()  # and so does the ledger's writer, started anew on its next row
    try:
        yield
    finally:
        if saved is missing:
            del options[key]
        else:
            options[key] = saved
        connections.close_all()
        LEDGER.stop()


POSTGRES_URL = os.environ.get("POC_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def reachable_postgres() -> str:
    """A PostgreSQL server's URL for tests that need one even when the suite runs on SQLite.

    Skips where none answers (a laptop may have none), unless POC_REQUIRE_POSTGRES=1, as
    .ci/run sets: in CI such a test must run."""
    import socket
    from urllib.parse import urlsplit

    import pytest

    parts = urlsplit(POSTGRES_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5432), timeout=2).close()
    except OSError:
        reason = f"no PostgreSQL answers at {parts.hostname}:{parts.port or 5432}"
        if os.environ.get("POC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}, and POC_REQUIRE_POSTGRES=1 requires it", pytrace=False)
        pytest.skip(f"{reason} (POC_TEST_POSTGRES_URL)")
    return POSTGRES_URL

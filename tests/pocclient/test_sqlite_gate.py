"""The SQLite backend's gate: a transaction holds it from BEGIN to COMMIT or ROLLBACK, across
threads and processes, gives it up when its process dies, and never doubles the busy timeout.

On a SQLite file of its own, built from the settings, so that it runs on PostgreSQL too.
"""

import fcntl
import os
import signal
import threading
import traceback

import pytest
from django.conf import settings
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from pocclient.db.sqlite3 import base as gated
from tests.helpers.processes import write_lock_held_by_another_process


def handler_for(path: str, timeout: float) -> ConnectionHandler:
    """Connections to ``path`` configured like the default database's, but for the timeout."""
    options = {**settings.SQLITE_OPTIONS, "timeout": timeout}
    return ConnectionHandler(
        {"default": {"ENGINE": settings.SQLITE_ENGINE, "NAME": path, "OPTIONS": options}}
    )


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A handler for a fresh SQLite file, configured like the default database, one table."""
    handler = handler_for(str(tmp_path / "gated.sqlite3"), timeout=10.0)
    with django_db_blocker.unblock():
        with handler["default"].cursor() as cursor:
            cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        yield handler
        handler.close_all()


def begin(conn) -> None:
    """What ``atomic`` does on entering its outermost block."""
    conn.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def end(conn, *, commit: bool = True) -> None:
    conn.commit() if commit else conn.rollback()
    conn.set_autocommit(True)


def gate_is_free(database) -> bool:
    """Whether another process could take the gate now (a descriptor of our own)."""
    fd = os.open(database["default"].settings_dict["NAME"] + "-writers", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def holding(database):
    """Another process in a transaction on the file until the block ends (hold_lock)."""
    path = database["default"].settings_dict["NAME"]
    return write_lock_held_by_another_process(f"sqlite:///{path}")


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_a_transaction_holds_the_gate_from_begin_to_its_end(database, commit):
    conn = database["default"]
    conn.ensure_connection()
    assert gate_is_free(database)

    begin(conn)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (1)")
    assert not gate_is_free(database)
    end(conn, commit=commit)

    assert gate_is_free(database)
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t")
        assert cursor.fetchone()[0] == (1 if commit else 0)


def test_closing_a_connection_in_a_transaction_gives_the_gate_up(database):
    conn = database["default"]
    begin(conn)
    assert not gate_is_free(database)
    conn.close()
    assert gate_is_free(database)


def test_a_thread_waits_at_the_gate_and_goes_in_when_it_is_free(database):
    first = database["default"]
    begin(first)
    with first.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (1)")
    order, waiting = [], threading.Event()

    def second() -> None:
        conn = database["default"]  # this thread's own connection
        waiting.set()
        begin(conn)
        order.append(("began", conn._gate is not None))
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO t (v) VALUES (2)")
        end(conn)
        conn.close()

    thread = threading.Thread(target=second)
    thread.start()
    waiting.wait(5)
    order.append("first committed")
    end(first)
    thread.join(10)

    # It went in through the gate (not after giving up on it), once the first had committed.
    assert order == ["first committed", ("began", True)]
    with first.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY id")
        assert cursor.fetchall() == [(1,), (2,)]


def test_past_the_busy_timeout_it_fails_once_and_keeps_its_busy_timeout(database):
    impatient = handler_for(database["default"].settings_dict["NAME"], timeout=0.5)
    conn = impatient["default"]
    with holding(database), pytest.raises(OperationalError, match="database is locked"):
        begin(conn)
    conn.set_autocommit(True)
    assert conn._gate is None and gate_is_free(database)
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 500
    begin(conn)  # the holder is gone: through the gate again
    assert conn._gate is not None
    end(conn)
    impatient.close_all()


def test_a_process_killed_in_a_transaction_leaves_the_gate_free(database):
    with holding(database) as process:
        assert not gate_is_free(database)
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    assert gate_is_free(database)
    conn = database["default"]
    begin(conn)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (1)")
    assert conn._gate is not None
    end(conn)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork")
def test_a_forked_child_has_a_gate_of_its_own(database):
    """A child forked while a thread of the parent holds the gate (is in a transaction): the
    parent's lock, copied held, would keep the child out for good; the child opens a gate of
    its own and goes in once the parent has let go. (Only the gate: SQLite's connections must
    not cross a fork.)"""
    conn = database["default"]
    begin(conn)
    end(conn)  # the gate now exists in this process
    path = os.path.realpath(conn.settings_dict["NAME"])
    parents = gated._gate_for(path)
    assert parents.acquire(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a report in its exit code, nothing else
        code = 1
        try:
            os.close(write)
            os.read(read, 1)  # the parent has let go
            gate = gated._gate_for(path)
            code = 0 if gate is not parents and gate.acquire(5) else 2
        except BaseException:
            traceback.print_exc()  # on the test's captured stderr
        finally:
            os._exit(code)
    os.close(read)
    parents.release()
    os.write(write, b"x")
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gated._gate_for(path) is parents  # the parent's is still its own

"""Django's SQLite backend, with writers queueing for the write lock instead of sleeping for it.

SQLite lets one writer in at a time and makes the others retry in its busy handler, which
sleeps between tries in steps growing to 100 ms: under steady contention (two gunicorn
processes recording calls, two job workers writing back results) a writer sleeps on long after
the lock was freed, and the lock stands idle. Here every transaction (``BEGIN IMMEDIATE``: every
``atomic`` block) first passes a gate: a lock shared by this process's threads, then an
``flock`` on a file beside the database, shared by its processes, held until the commit or
rollback. A process's threads are woken the moment the gate is free; the one thread of a process
waiting for another process polls the ``flock`` every half millisecond. BENCHMARKS.md, section
13, measures it: two processes of four writers, p99 of a short transaction 79 -> 8 ms.

The gate only orders writers that would wait anyway; SQLite's own lock still excludes. Its
wait is the busy timeout (``OPTIONS["timeout"]``), as SQLite's is: past it, the transaction
tries the lock once more without waiting and fails with "database is locked" if it is still
held, never waiting twice. The kernel releases the ``flock`` of a process that dies, and
``fcntl`` locks would not do (they are per process, so two threads of one could both hold them,
and closing any descriptor of the file drops them). Statements outside a transaction
(autocommit) do not take the gate; SQLite's lock still serialises them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time

from django.db.backends.sqlite3 import base, creation

POLL_SECONDS = 0.0005  # a blocking flock would wake sooner, but cannot give up in time


class _Gate:
    def __init__(self, path: str) -> None:
        self.lock = threading.Lock()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=timeout):
            return False
        try:
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self.lock.release()
                        return False
                    time.sleep(POLL_SECONDS)
        except BaseException:
            self.lock.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()


_gates: dict[str, _Gate] = {}
_gates_lock = threading.Lock()


def _gate_for(database: str) -> _Gate:
    with _gates_lock:
        gate = _gates.get(database)
        if gate is None:
            gate = _gates[database] = _Gate(f"{database}-writers")
        return gate


def _forget_gates() -> None:
    """A forked child opens its own: an inherited descriptor shares the parent's lock, and a
    lock one of the parent's threads held at the fork would never be released."""
    global _gates_lock
    for gate in _gates.values():
        os.close(gate.fd)
    _gates.clear()
    _gates_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_gates)


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        super()._destroy_test_db(test_database_name, verbosity)
        if not self.is_in_memory_db(test_database_name):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{test_database_name}-writers")  # the gate goes with its database


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    _gate: _Gate | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self.is_in_memory_db():
            return super()._start_transaction_under_autocommit()
        gate = _gate_for(os.path.realpath(self.settings_dict["NAME"]))
        timeout = self.settings_dict["OPTIONS"].get("timeout", 5.0)  # sqlite3's default
        if gate.acquire(timeout):
            try:
                super()._start_transaction_under_autocommit()
            except BaseException:
                gate.release()
                raise
            self._gate = gate
            return None
        # The busy timeout has passed at the gate already: one more try, no second wait.
        with self.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 0")
            try:
                super()._start_transaction_under_autocommit()
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {round(timeout * 1000)}")
        return None

    def _leave_gate(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._leave_gate()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._leave_gate()

"""The exchange ledger: every call on record before it leaves, written by one thread per process.

Write-ahead. A call's ``Exchange`` row is inserted, and committed, as *pending* before the
request leaves (``open``); when the call ends it is completed (``close``): *answered*, *failed*
or *unknown* (the process cannot know whether the API received it). A ``kill -9`` at any
moment therefore leaves every call that may have reached the API on record: at worst pending,
and a pending row whose ``settle_by`` has passed (its deadline, and a minute to record the
end) belongs to a process that died; it is shown as unknown, and the writer marks it so
(``sweep``).

One writer, group commit. A thread that finds nobody in this process writing the log
(``_writing`` free) and nothing waiting for the writer writes its own row at once, on the
connection it has open (``_directly``): a sequential caller pays two short commits per call,
cheaper than a hand-off to another thread and back. Threads that find the log busy, and batch
workers (which hold no connection), hand their rows to the process's writer thread and wait
only for what they must: ``open`` waits for the pending row's commit (the request may not
leave before it); ``close`` waits only when asked, so a completion shares the commit of the
next call's pending row.
Reads of the log in this process pass ``read_barrier`` first (``ExchangeQuerySet``): whoever
made a call reads its end at once; another process may see it pending for the moment before
the commit. Batches ``flush`` at their end. The writer takes whatever is waiting and writes
it in one short transaction: inserts, then the completions (one prepared UPDATE, many rows),
then the per-minute rollup (``ExchangeRollup``) that the admin's summary reads. The threads
of a process take ``_writing`` to write the log, so only one of them at a time does and a
thread that finds it taken hands its row over to share a commit; how writers of all kinds
and processes wait for SQLite's lock is the SQLite backend's gate (``pocclient.db.sqlite3``).

Inside a transaction. A call made while the caller's connection is in an atomic block is
recorded on that connection instead (its own savepoint): the writer's connection could not
take SQLite's write lock while the caller holds it.

On PostgreSQL there is no lock on the whole database to take turns at: a thread with a
connection writes its pending row itself whatever others do, and hands a completion nobody
waits for to the writer, whose round trips (a completion takes five) then overlap the caller's
next call rather than precede it: a sequential caller waits for one INSERT per call.

Durability on PostgreSQL. A transaction that opens a call is committed as usual (a pending
row must be on disk before the request leaves, whatever crashes). One that only completes
calls uses ``synchronous_commit = off``: a crash of the application loses nothing (PostgreSQL
has the commit); a crash of the database server may lose the last moment of completions,
which then show as unknown, never as missing (BENCHMARKS.md measures the difference).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from .exceptions import LedgerError
from .models import Exchange, ExchangeRollup
from .models.exchanges import READ_BARRIER

logger = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 500
_FEW = 4
SWEEP_SECONDS = 60.0
IDLE_SECONDS = 5.0
ANALYZE_SECONDS = 3600.0
COALESCE_SECONDS = 0.002  # longest a completion waits for company in its commit
SETTLE_GRACE = timedelta(seconds=60)  # after its deadline, for the end of a call to be written
WAIT_SECONDS = 60.0  # longest a caller waits for its row (the database's lock timeout is 20 s)
BARRIER_SECONDS = 5.0  # longest a read of the log waits for this process's writes
ABANDONED = (
    "The process that sent this call stopped before it could record how the call ended; "
    "the API may have received it."
)
# What a completion may change: the request side was written by open().
COMPLETION_FIELDS = (
    "state",
    "status",
    "response_headers",
    "response_body",
    "response_truncated",
    "duration_ms",
    "attempts",
    "error",
    "error_code",
)


class _Op:
    __slots__ = ("abandoned", "exchange", "fields", "future", "kind")

    def __init__(
        self,
        kind: str,
        exchange: Exchange,
        fields: dict[str, Any] | None = None,
        future: Future | None = None,
    ) -> None:
        self.kind = kind  # "open" (a pending row), "record" (a whole row), "close"
        self.exchange = exchange
        self.fields = fields
        self.future = future
        self.abandoned = False  # the caller stopped waiting for its open


class Ledger:
    """The process's writer of exchanges (``LEDGER``); thread-safe."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._queued = 0  # ops handed over and not yet written
        self._submitted = 0  # ops ever handed over, and ever written (or failed): FIFO, so
        self._settled = 0  # every op before the n-th submitted is done once settled >= n
        self._written = threading.Condition(self._lock)
        self._writing = threading.Lock()  # held while this process writes the log
        self._next_sweep = 0.0
        self._next_analyze = 0.0
        self.commits = 0  # transactions the writer committed, and the rows they held
        self.rows = 0

    # --- what callers do ---------------------------------------------------------------------

    def open(self, exchange: Exchange) -> int:
        """Insert ``exchange`` as pending and return its id once committed; raise
        ``LedgerError`` when it cannot be (the call must then not be sent)."""
        exchange.state = Exchange.State.PENDING
        if connection.in_atomic_block:
            return self._inline_insert(exchange)
        if self._directly(lambda: self._insert(exchange)):
            return exchange.pk
        future: Future[int] = Future()
        op = _Op("open", exchange, future=future)
        self._submit(op)
        try:
            return future.result(timeout=WAIT_SECONDS)
        except TimeoutError:
            with self._lock:
                op.abandoned = True
            if future.done() and future.exception() is None:  # committed just too late
                self._submit(_Op("close", exchange, fields=_never_sent({})))
            raise LedgerError(
                "The call was not sent: the exchange log could not record it within "
                f"{WAIT_SECONDS:g} s (the database is busy). Try again in a moment."
            ) from None

    def record(self, exchange: Exchange) -> int | None:
        """Insert a whole row (a call that was never sent); its id, or None if it failed."""
        if connection.in_atomic_block:
            try:
                return self._inline_insert(exchange)
            except LedgerError:
                return None
        if self._directly(lambda: self._insert(exchange)):
            return exchange.pk
        future: Future[int] = Future()
        self._submit(_Op("record", exchange, future=future))
        try:
            return future.result(timeout=WAIT_SECONDS)
        except (TimeoutError, LedgerError):
            return None

    def close(self, exchange: Exchange, fields: dict[str, Any], *, wait: bool) -> None:
        """Complete ``exchange`` (opened by ``open``) with ``fields``; with ``wait``, return
        once it is committed. A failure to complete never hides the call's result: the row
        stays pending, and is shown as unknown once it should have settled."""
        if connection.in_atomic_block:
            try:
                self._inline_update(exchange, fields)
            except Exception:
                logger.exception("Could not record the end of %s", exchange)
            return
        # PostgreSQL: a completion nobody waits for goes to the writer, whose round trips
        # (five for a completion) then overlap the caller's next call instead of preceding it.
        handed_over = not wait and connection.vendor == "postgresql"
        if not handed_over and self._directly(lambda: self._inline_update(exchange, fields)):
            return
        future: Future[None] | None = Future() if wait else None
        self._submit(_Op("close", exchange, fields=fields, future=future))
        if future is not None:
            try:
                future.result(timeout=WAIT_SECONDS)
            except (TimeoutError, LedgerError):
                logger.warning("The end of %s is not recorded yet", exchange)

    def flush(self, timeout: float = WAIT_SECONDS) -> bool:
        """Wait until everything handed over so far is written (or failed); False on timeout."""
        with self._written:
            return self._written.wait_for(lambda: self._queued == 0, timeout=timeout)

    def read_barrier(self, alias: str = "default") -> None:
        """Before a read of the log: wait until what this process handed over before now is
        written, so that a single call's caller reads its completion (``close`` does not wait
        for it). Not in the writer, and not inside a transaction on SQLite: the caller may hold
        SQLite's write lock there, which the writer would wait for."""
        target = self._submitted
        if self._settled >= target or threading.current_thread() is self._thread:
            return
        if connections[alias].in_atomic_block and connections[alias].vendor == "sqlite":
            return  # PostgreSQL has no such lock: the writer commits beside the transaction
        with self._written:
            if not self._written.wait_for(lambda: self._settled >= target, timeout=BARRIER_SECONDS):
                logger.warning("Reading the exchange log before this process's last writes")

    def stop(self) -> None:
        """Write what is queued, then end the writer (it closes its connection); the next
        call starts a new one. At process exit, and in tests that change database settings."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=WAIT_SECONDS)

    # --- the writer ----------------------------------------------------------------------------

    def _submit(self, op: _Op) -> None:
        with self._lock:
            self._queued += 1
            self._submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="api-ledger", daemon=True)
                self._thread.start()
        self._queue.put(op)

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    connections.close_all()  # idle: no connection kept open for nothing
                    first = _SWEEP
                ops = [first]
                self._drain(ops)
                if all(isinstance(op, _Op) and op.kind == "close" and not op.future for op in ops):
                    # Nobody waits for these completions: the next call's pending row (a batch
                    # worker sending one call after another) gets a moment to share the commit.
                    try:
                        ops.append(self._queue.get(timeout=COALESCE_SECONDS))
                    except queue.Empty:
                        pass
                    else:
                        self._drain(ops)
                stopping = None in ops
                work = [op for op in ops if op is not None and op is not _SWEEP]
                if work:
                    self._write(work)
                    self._settle(len(work))
                self._sweep_when_due()
                if stopping:
                    return
        finally:
            connections.close_all()  # only this thread's connections

    def _drain(self, ops: list[Any]) -> None:
        while len(ops) < MAX_ROWS_PER_COMMIT:
            try:
                ops.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _write(self, ops: list[_Op]) -> None:
        try:
            # Inside the try: whatever it raises fails these ops, never the writer thread.
            close_old_connections()
            with self._writing, transaction.atomic():
                self._apply(ops)
            self.commits += 1
            self.rows += len(ops)
        except Exception:
            # One bad row, or a lock held too long: each on its own, so that the others keep
            # their record and each caller learns about its own.
            for op in ops:
                try:
                    with self._writing, transaction.atomic():
                        self._apply([op])
                except Exception as exc:
                    self._failed(op, exc)
                else:
                    self._done([op])
            return
        self._done(ops)

    def _apply(self, ops: list[_Op]) -> None:
        inserts = [op for op in ops if op.kind != "close"]
        closes = [op for op in ops if op.kind == "close"]
        if not any(op.kind == "open" for op in ops):
            _no_wait_for_disk()
        if inserts:
            with self._lock:
                for op in inserts:
                    if op.abandoned:  # the caller gave up: the call was never sent
                        _never_sent(op.exchange)
            if len(inserts) <= _FEW:  # bulk_create builds its query anew: dearer for a few
                for op in inserts:
                    Exchange.objects.record(op.exchange)
            else:
                Exchange.objects.bulk_create([op.exchange for op in inserts])
        if closes:
            Exchange.objects.complete([(op.exchange.pk, op.fields) for op in closes])
        finished = [op.exchange for op in inserts if op.exchange.state != Exchange.State.PENDING]
        for op in closes:
            for name, value in op.fields.items():
                setattr(op.exchange, name, value)
            finished.append(op.exchange)
        if finished:
            ExchangeRollup.objects.add(Counter(ExchangeRollup.key_of(e) for e in finished))

    def _done(self, ops: list[_Op]) -> None:
        late = []
        with self._lock:
            for op in ops:
                if op.kind == "open" and op.abandoned and op.exchange.state == "pending":
                    late.append(op.exchange)  # committed after its caller gave up on it
        for exchange in late:
            self._submit(_Op("close", exchange, fields=_never_sent({})))
        for op in ops:
            if op.future is not None:
                op.future.set_result(op.exchange.pk)

    def _failed(self, op: _Op, exc: Exception) -> None:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        exchange = op.exchange
        logger.error(
            "Could not record the exchange for %s %s: %s", exchange.method, exchange.path, reason
        )
        if op.future is not None:
            op.future.set_exception(
                LedgerError(
                    "The exchange log could not record the call "
                    f"({reason}); the server log has the details."
                )
            )

    def _settle(self, count: int) -> None:
        with self._written:
            self._queued -= count
            self._settled += count
            self._written.notify_all()

    def _sweep_when_due(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        try:
            with self._writing:
                sweep()
            if now >= self._next_analyze:
                self._next_analyze = now + ANALYZE_SECONDS
                analyze()
        except Exception:  # the writer must outlive anything a sweep meets
            logger.warning("Could not mark abandoned exchanges as unknown", exc_info=True)

    # --- inside the caller's transaction ---------------------------------------------------

    def _inline_insert(self, exchange: Exchange) -> int:
        try:
            return self._insert(exchange)
        except Exception as exc:
            self._failed(_Op("record", exchange), exc)
            raise LedgerError("The exchange log could not record the call.") from exc

    def _insert(self, exchange: Exchange) -> int:
        pending = exchange.state == Exchange.State.PENDING
        if pending and not connection.in_atomic_block:  # one statement: its own transaction
            return Exchange.objects.record(exchange)
        with transaction.atomic():
            pk = Exchange.objects.record(exchange)
            if not pending:
                ExchangeRollup.objects.add(Counter([ExchangeRollup.key_of(exchange)]))
            return pk

    def _inline_update(self, exchange: Exchange, fields: dict[str, Any]) -> None:
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost:
                _no_wait_for_disk()  # a completion alone (see the module's docstring)
            Exchange.objects.complete([(exchange.pk, fields)])
            for name, value in fields.items():
                setattr(exchange, name, value)
            ExchangeRollup.objects.add(Counter([ExchangeRollup.key_of(exchange)]))

    # --- on the caller's own connection, when nobody else here is writing ---------------------

    def _directly(self, write: Callable[[], object]) -> bool:
        """Run ``write`` on the caller's connection if this process is not writing the log
        just now (``_writing`` is free); False if it did not, and the writer must.

        A hand-off to the writer thread and back costs more than a single row's commit: a
        sequential caller (a command, a view making one call) does better writing its own
        rows, and threads that find the log busy hand theirs over, to share one commit. Only
        on a connection the thread has open already: pool workers never open one for this.
        """
        if connection.connection is None:
            return False
        # PostgreSQL has no lock on the whole database to take turns at; SQLite has.
        taking_turns = connection.vendor != "postgresql"
        if taking_turns and (self._queued or not self._writing.acquire(blocking=False)):
            return False  # others wait (share their commit), or this process is writing
        try:
            write()
        except Exception:  # the writer tries again, and reports what it meets
            logger.debug("Could not write an exchange directly", exc_info=True)
            return False
        finally:
            if taking_turns:
                self._writing.release()
        return True


def _no_wait_for_disk() -> None:
    """PostgreSQL: this transaction's commit need not wait for the disk (completions only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


_SWEEP: Any = object()  # a timeout of the writer's wait: time to sweep


def _never_sent(target: Exchange | dict[str, Any]) -> dict[str, Any]:
    fields = {
        "state": Exchange.State.FAILED,
        "attempts": 0,
        "error": "The call was not sent: the exchange log could not record it in time.",
        "error_code": "not_recorded",
    }
    if isinstance(target, Exchange):
        for name, value in fields.items():
            setattr(target, name, value)
    return fields


def analyze() -> None:
    """SQLite keeps no statistics of its own: without them its planner takes the first index
    that matches (``kind`` for a batch's calls, the whole API), not the one that narrows most.
    Sampled (``analysis_limit``), so it takes milliseconds however large the log; PostgreSQL's
    autovacuum analyzes by itself."""
    if connection.vendor != "sqlite":
        return
    table = Exchange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA analysis_limit = 1000")
        cursor.execute(f"ANALYZE {table}")
        _one_row_count(cursor, table)


def _one_row_count(cursor, table: str) -> None:
    """Give every whole-table index the same row count, the table's, and no partial index
    more. A sampled ANALYZE guesses each index's size on its own (on a million rows it said
    2.5 million for one index, 470,000 for another), and the planner then scans the "smaller"
    one and sorts, rather than walk the date index and stop at the first page: a filter on an
    unindexed column took a second instead of a millisecond. Ids are near enough to a count."""
    cursor.execute(f"SELECT max(id) - min(id) + 1 FROM {table}")  # noqa: S608 (our own table)
    (rows,) = cursor.fetchone()
    if not rows:
        return
    cursor.execute(
        "SELECT name, sql LIKE '%% WHERE %%' FROM sqlite_schema WHERE type = 'index' "
        "AND tbl_name = %s",
        [table],
    )
    partial = dict(cursor.fetchall())
    cursor.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = %s", [table])
    for index, stat in cursor.fetchall():
        counts = stat.split(" ")
        if index not in partial or not counts[0].isdigit():
            continue
        counts[0] = str(min(int(counts[0]), rows) if partial[index] else rows)
        cursor.execute(
            "UPDATE sqlite_stat1 SET stat = %s WHERE tbl = %s AND idx = %s",
            [" ".join(counts), table, index],
        )
    cursor.execute("ANALYZE sqlite_schema")  # the planner reads the changed counts


def sweep() -> int:
    """Mark pending exchanges that should have settled as unknown (their process died);
    returns how many. Each row is changed only if it is still pending, so processes that
    sweep at once count each row once."""
    now = timezone.now()
    stale = list(
        Exchange.objects.filter(state=Exchange.State.PENDING, settle_by__lt=now).only(
            "id", "created_at", "kind", "duration_ms"
        )[:1000]
    )
    marked = []
    for exchange in stale:
        fields = {"state": Exchange.State.UNKNOWN, "error": ABANDONED, "error_code": "abandoned"}
        with transaction.atomic():
            if Exchange.objects.filter(pk=exchange.pk, state=Exchange.State.PENDING).update(
                **fields
            ):
                exchange.state, exchange.status = Exchange.State.UNKNOWN, None
                ExchangeRollup.objects.add(Counter([ExchangeRollup.key_of(exchange)]))
                marked.append(exchange)
    return len(marked)


LEDGER = Ledger()
READ_BARRIER.append(LEDGER.read_barrier)
atexit.register(LEDGER.stop)

"""Storing exchanges: one at a time for single calls, many per commit for a batch.

A single call stores its exchange before it returns (``store``), so whoever made it can read
it at once. A batch's workers instead hand their exchanges to an ``ExchangeWriter``: a thread
of the batch's own that commits whatever rows are waiting in one short transaction. The
workers go straight on to their next call; inserting is taken off their path and 32 commits
become one. Each result still carries its exchange's id: ``iter_many`` waits for the commit
before it yields a result (that wait is on the consumer's side, not the workers'), and the
writer has committed every row before the batch returns.

The writer is one of "the threads we start": it opens its own database connection and closes
it when the batch ends (``design.md``).
"""

import logging
import queue
import threading
from concurrent.futures import Future

from django.db import close_old_connections, connection, connections, transaction

from .models import Exchange

logger = logging.getLogger(__name__)

_DONE = None
_MAX_ROWS_PER_COMMIT = 500


def store(exchange: Exchange) -> int | None:
    """Insert one exchange and return its id; ``None`` (and a log line) if it cannot be."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint: a failed insert must not poison it
                return Exchange.objects.record(exchange)
        return Exchange.objects.record(exchange)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.exception(
            "Could not record the exchange for %s %s: %s", exchange.method, exchange.path, reason
        )
        return None


class ExchangeWriter:
    """Commits a batch's exchanges from a thread of its own, many rows per transaction."""

    def __init__(self, name: str = "api-exchange-writer") -> None:
        self._rows: queue.SimpleQueue[tuple[Exchange, Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, exchange: Exchange) -> "Future[int | None]":
        """Queue ``exchange``; the future gives its id once committed (``None`` if it failed)."""
        future: Future[int | None] = Future()
        self._rows.put((exchange, future))
        return future

    def close(self) -> None:
        """Commit whatever is queued, then stop the thread (which closes its connection)."""
        self._rows.put(_DONE)
        self._thread.join()

    def _run(self) -> None:
        try:
            finished = False
            while not finished:
                waiting = [self._rows.get()]
                while len(waiting) < _MAX_ROWS_PER_COMMIT:
                    try:
                        waiting.append(self._rows.get_nowait())
                    except queue.Empty:
                        break
                finished = _DONE in waiting
                rows = [row for row in waiting if row is not _DONE]
                if rows:
                    self._write(rows)
        finally:
            connections.close_all()  # only this thread's connections

    def _write(self, rows: list[tuple[Exchange, Future]]) -> None:
        close_old_connections()
        exchanges = [exchange for exchange, _ in rows]
        try:
            with transaction.atomic():
                Exchange.objects.bulk_create(exchanges)
        except Exception:
            # Keep one bad row (or a lock held too long) from costing the others their record.
            for exchange, future in rows:
                future.set_result(store(exchange))
            return
        for exchange, future in rows:
            future.set_result(exchange.pk)

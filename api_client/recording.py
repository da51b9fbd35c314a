"""The exchange log: a call and its outcome become one redacted ``Exchange`` row.

``exchange_for`` builds the row (redaction, truncation, the log line); ``store`` inserts one
at once, for single calls, so whoever made the call can read it back. A batch's workers
instead hand their rows to an ``ExchangeWriter``: a thread of the batch's own that commits
whatever rows are waiting in one short transaction. The workers go straight on to their next
call; inserting is taken off their path and 32 commits become one. Each result still carries
its exchange's id: ``iter_many`` waits for the commit before it yields a result (that wait is
on the consumer's side, not the workers'), and the writer has committed every row before the
batch returns.

The writer is one of "the threads we start": it opens its own database connection and closes
it when the batch ends (README, "Threads, connections and SQLite").
"""

import logging
import queue
import threading
from collections.abc import Iterable
from concurrent.futures import Future

from django.db import close_old_connections, connection, connections, transaction

from .context import get_actor, get_request_id
from .messages import Call, Outcome
from .models import Exchange
from .redaction import (
    redact_body,
    redact_headers,
    redact_url,
    scrub,
    storable,
    storable_headers,
    truncate,
)

logger = logging.getLogger(__name__)

_DONE = None
_MAX_ROWS_PER_COMMIT = 500
MAX_URL = 4096
MAX_SMALLINT = 32767
MAX_ERROR = 2000


def exchange_for(
    call: Call, outcome: Outcome, *, secrets: Iterable[str], body_limit: int, batch_id: str = ""
) -> Exchange:
    """The row that records ``call`` and what became of it, every secret redacted, every text
    storable whatever the API sent (``api_client.redaction``)."""
    secrets = tuple(secrets)
    url, path = redact_url(call.url), redact_url(call.path)
    request_headers = storable_headers(redact_headers(outcome.headers, secrets))
    content_type = request_headers.get("Content-Type", "")
    request_body = storable(redact_body(call.body, content_type, secrets))
    response, error = outcome.response, outcome.error
    response_headers, response_body, truncated = {}, "", False
    if response is not None:
        response_headers = storable_headers(redact_headers(response.headers, secrets))
        response_body = redact_body(response.content, response.content_type, secrets)
        response_body, truncated = truncate(storable(response_body), body_limit)
    status = response.status if response is not None else None
    logger.info(
        "%s %s -> %s in %.1f ms (attempts=%d) request headers=%s",
        call.method,
        url,
        status if status is not None else (error.code if error else "no response"),
        outcome.duration_ms,
        outcome.attempts,
        request_headers,
    )
    thread = threading.current_thread()
    return Exchange(
        kind=call.kind,
        method=call.method,
        url=url[:MAX_URL],
        path=path[:MAX_URL],
        request_headers=request_headers,
        request_body=truncate(request_body, body_limit)[0],
        status=status if status is None or 0 <= status <= MAX_SMALLINT else None,
        response_headers=response_headers,
        response_body=response_body,
        response_truncated=truncated,
        duration_ms=round(outcome.duration_ms, 3),
        attempts=min(outcome.attempts, MAX_SMALLINT),
        error=storable(scrub(error.message, secrets))[:MAX_ERROR] if error else "",
        error_code=error.code[:40] if error else "",
        thread=f"{thread.name} ({thread.ident})"[:100],
        request_id=get_request_id(),
        batch_id=batch_id,
        actor=get_actor(),
    )


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

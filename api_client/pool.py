"""The process's bounds: one pool of worker threads shared by every batch, and one bound on
calls in flight shared by every thread.

Worker threads own their database connections. This is the fix for the proof of concept's
crash: Django gives every thread its own connection; the only rule is that a connection must
be closed by the thread that opened it, and that no connection or cursor crosses threads.
Each worker calls ``close_old_connections()`` before every task, so a connection that broke or
outlived ``CONN_MAX_AGE`` is replaced rather than reused, and closes its connections when it
runs out of work, so none is left for the garbage collector to finalise in another thread.

One pool for the process, not one per batch: twenty batches at once share ``size`` threads
(``POC_API_MAX_WORKERS``), taking turns item by item, each never running more than its own
concurrency at once. A worker with nothing to do for ``IDLE_SECONDS`` ends. Tasks run in a
copy of the submitter's ``contextvars`` context, so its request id follows the work.

``IN_FLIGHT`` counts the calls being sent in this process, from pool workers and request
threads alike; the transport waits for a free place (at most until the call's deadline), so
no more calls are in flight, and no more connections open, than the bound.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import close_old_connections, connections

IDLE_SECONDS = 2.0


class _InFlight:
    """A semaphore whose size is given at each entry (the settings may change in tests)."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self.busy = 0

    def enter(self, limit: int, timeout: float) -> bool:
        with self._free:
            if not self._free.wait_for(lambda: self.busy < limit, timeout=max(timeout, 0)):
                return False
            self.busy += 1
            return True

    def leave(self) -> None:
        with self._free:
            self.busy -= 1
            self._free.notify()


IN_FLIGHT = _InFlight()


class _Batch:
    def __init__(self, func: Callable[[Any], Any], items: Sequence[Any], concurrency: int) -> None:
        self.func = func
        self.pending: deque[tuple[int, Any]] = deque(enumerate(items))
        self.concurrency = concurrency
        self.running = 0
        self.results: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self.context = contextvars.copy_context()

    @property
    def runnable(self) -> bool:
        return bool(self.pending) and self.running < self.concurrency


class WorkerPool:
    """At most ``size`` threads, shared fairly by every batch submitted to them."""

    def __init__(self, name: str = "api-worker") -> None:
        self.name = name
        self._lock = threading.Condition()  # idle workers wait on it for work
        self._drained = threading.Condition(self._lock)  # closing streams wait on it
        self._batches: deque[_Batch] = deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._serial = 0

    @property
    def threads(self) -> int:
        with self._lock:
            return len(self._threads)

    def map_unordered[T, R](
        self, func: Callable[[T], R], items: Sequence[T], *, concurrency: int, size: int
    ) -> Iterator[tuple[int, R | BaseException]]:
        """Run ``func`` on every item, at most ``concurrency`` at once, on at most ``size``
        threads (for the whole process).

        Yields ``(index, result)`` pairs in completion order; an exception raised by ``func``
        is yielded as the result, so one failure never stops the others. If the consumer
        stops early (a client went away), no new item of this batch starts, and the items
        running are waited for before this generator returns.
        """
        if not items:
            return
        stream = self.stream(func, concurrency=concurrency, size=min(size, len(items)))
        try:
            stream.put_all(list(enumerate(items)))
            for _ in range(len(items)):
                yield stream.get()
        finally:
            stream.close()

    def stream(self, func: Callable[[Any], Any], *, concurrency: int, size: int) -> Stream:
        """A batch fed as it goes (a job's items, claimed as places free up)."""
        batch = _Batch(func, (), max(1, concurrency))
        with self._lock:
            self._batches.append(batch)
        return Stream(self, batch, size)

    def _grow(self, size: int) -> None:
        """Start threads until every one that could be busy exists (``size`` at most)."""
        wanted = sum(min(b.concurrency - b.running, len(b.pending)) for b in self._batches)
        while len(self._threads) < size and self._idle < wanted:
            self._serial += 1
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-{self._serial}", daemon=True
            )
            self._threads.add(thread)
            self._idle += 1
            thread.start()

    def _take(self) -> tuple[_Batch, int, Any] | None:
        """The next item to run, taking batches in turn (round robin); under the lock."""
        for _ in range(len(self._batches)):
            batch = self._batches[0]
            self._batches.rotate(-1)
            if batch.runnable:
                index, item = batch.pending.popleft()
                batch.running += 1
                self._idle -= 1
                return batch, index, item
        return None

    def _work(self) -> None:
        me = threading.current_thread()
        task = None
        try:
            while True:
                if task is None:
                    connections.close_all()  # only this thread's: there is nothing to do now
                    with self._lock:
                        self._lock.wait_for(self._has_work, timeout=IDLE_SECONDS)
                        task = self._take()
                        if task is None:  # leave in the same breath, or _grow would count us
                            self._threads.discard(me)
                            self._idle -= 1
                            return
                batch, index, item = task
                close_old_connections()
                try:
                    # Each task gets its own copy: a Context cannot be entered twice at once.
                    outcome: Any = batch.context.copy().run(batch.func, item)
                except BaseException as exc:  # even SystemExit: a result, not a dead thread
                    outcome = exc
                with self._lock:
                    batch.running -= 1
                    self._idle += 1
                    task = self._take()
                    # One place freed: at most one idle worker has work now (waking all of
                    # them after every task cost a job's workers a tenth of their CPU).
                    if self._has_work():
                        self._lock.notify()
                    if batch.running == 0:
                        self._drained.notify_all()
                if task is None:
                    connections.close_all()  # before the result, so a caller sees them closed
                batch.results.put((index, outcome))
        except BaseException:  # a bug here must not leave the pool counting a dead thread
            with self._lock:
                self._threads.discard(me)
                self._idle -= 1
                self._lock.notify_all()
                self._drained.notify_all()
            raise
        finally:
            connections.close_all()

    def _has_work(self) -> bool:
        return any(batch.runnable for batch in self._batches)


class Stream:
    """Items handed to the pool one by one (``put``), their results taken as they come
    (``get``); ``close`` takes back what has not started and waits for what has."""

    def __init__(self, pool: WorkerPool, batch: _Batch, size: int) -> None:
        self._pool, self._batch, self._size = pool, batch, size

    def put_all(self, keyed: list[tuple[Any, Any]]) -> None:
        """Run ``func(item)`` for each ``(key, item)``; its result comes back with ``key``."""
        with self._pool._lock:
            self._batch.pending.extend(keyed)
            self._pool._grow(self._size)
            self._pool._lock.notify(len(keyed))

    def get(self, timeout: float | None = None) -> tuple[Any, Any]:
        """The next ``(key, result)`` to finish; ``queue.Empty`` after ``timeout``."""
        return self._batch.results.get(timeout=timeout)

    @property
    def outstanding(self) -> int:
        """Items handed over whose result has not been taken yet (waiting, running, done)."""
        with self._pool._lock:
            return len(self._batch.pending) + self._batch.running + self._batch.results.qsize()

    def close(self) -> list[tuple[Any, Any]]:
        """Stop: return the items not started, after the running ones have ended."""
        pool, batch = self._pool, self._batch
        with pool._lock:
            left = list(batch.pending)
            batch.pending.clear()
            if batch in pool._batches:
                pool._batches.remove(batch)
            pool._drained.wait_for(lambda: batch.running == 0)
        return left


POOL = WorkerPool()


def iter_in_threads[T, R](
    func: Callable[[T], R], items: Sequence[T], *, workers: int
) -> Iterator[tuple[int, R | BaseException]]:
    """``func`` over ``items`` on the process's pool, ``workers`` at once (see
    ``WorkerPool.map_unordered``); the pool has as many threads as ``workers`` at most."""
    return POOL.map_unordered(func, items, concurrency=workers, size=max(workers, _size()))


def _size() -> int:
    from .conf import api_settings  # the bound of the whole process: the default settings'

    return api_settings().MAX_WORKERS

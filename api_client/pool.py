"""A bounded pool of worker threads that own their database connections.

This is the fix for the proof of concept's crash. Django gives every thread its own
connection; the only rule is that a connection must be closed by the thread that opened it,
and that no connection or cursor crosses threads. Each worker here:

- calls ``close_old_connections()`` before every task, so a connection that broke or outlived
  ``CONN_MAX_AGE`` is replaced rather than reused;
- closes its connections when it runs out of work, so after a batch no more connections are
  open than there were workers, and none is left for the garbage collector to finalise in
  some other thread.

``concurrent.futures.ThreadPoolExecutor`` has an initializer hook but no finalizer, so its
threads could not close their connections when done; that is why this module starts its
threads itself. Tasks run in a copy of the caller's ``contextvars`` context, so the caller's
request id follows the work into the workers.
"""

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator, Sequence

from django.db import close_old_connections, connections

_WORKER_DONE = object()


def iter_in_threads[T, R](
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int,
    name: str = "api-worker",
) -> Iterator[tuple[int, R | BaseException]]:
    """Run ``func`` on every item with at most ``workers`` threads.

    Yields ``(index, result)`` pairs in completion order; an exception raised by ``func``
    is yielded as the result, so one failure never stops the others. If the consumer stops
    iterating early (a client went away), workers finish their current task, start no new
    ones, and are joined before this generator returns.
    """
    if not items:
        return
    workers = max(1, min(workers, len(items)))
    tasks: queue.SimpleQueue[tuple[int, T]] = queue.SimpleQueue()
    for pair in enumerate(items):
        tasks.put(pair)
    results: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()
    context = contextvars.copy_context()

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    index, item = tasks.get_nowait()
                except queue.Empty:
                    return
                close_old_connections()
                try:
                    # Each task gets its own copy: a Context cannot be entered twice at once.
                    outcome: R | BaseException = context.copy().run(func, item)
                except Exception as exc:
                    outcome = exc
                results.put((index, outcome))
        finally:
            connections.close_all()  # only this thread's connections
            results.put(_WORKER_DONE)

    threads = [
        threading.Thread(target=work, name=f"{name}-{n}", daemon=True) for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            message = results.get()
            if message is _WORKER_DONE:
                running -= 1
                continue
            yield message  # type: ignore[misc]
    finally:
        stop.set()
        for thread in threads:
            thread.join()

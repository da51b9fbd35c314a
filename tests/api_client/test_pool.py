"""The worker pool: bounded, isolated failures, early stop, context follows the work."""

import threading
import time

import pytest

from api_client.conf import api_settings
from api_client.context import get_request_id, request_id_scope
from api_client.pool import iter_in_threads
from tests.helpers.waiting import worker_threads_left

POOL_SIZE = api_settings().MAX_WORKERS


def test_results_come_back_for_every_item_with_their_index():
    got = dict(iter_in_threads(lambda n: n * n, list(range(50)), workers=4))

    assert got == {n: n * n for n in range(50)}


def test_an_exception_is_yielded_and_the_others_go_on():
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("boom")
        return n

    got = dict(iter_in_threads(work, list(range(10)), workers=3))

    assert isinstance(got.pop(3), ValueError)
    assert got == {n: n for n in range(10) if n != 3}


def test_no_more_threads_run_at_once_than_workers():
    running = 0
    peak = 0
    guard = threading.Lock()

    def work(_: int) -> None:
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with guard:
            running -= 1

    list(iter_in_threads(work, list(range(40)), workers=5))

    assert peak == 5


def test_stopping_early_starts_no_new_work_and_the_workers_end():
    started = []

    def work(n: int) -> int:
        started.append(n)
        time.sleep(0.02)
        return n

    for _ in iter_in_threads(work, list(range(100)), workers=2):
        break
    stopped_at = len(started)
    time.sleep(0.1)

    assert stopped_at <= 4
    assert len(started) == stopped_at  # nothing of the batch ran after it was left
    assert worker_threads_left() == []


def test_batches_at_once_share_the_process_bound_on_threads():
    """Twenty batches of 100 at once run on the process's pool, not twenty pools."""
    peak = 0
    guard = threading.Lock()

    def work(_: int) -> None:
        nonlocal peak
        with guard:
            peak = max(peak, sum(t.name.startswith("api-worker") for t in threading.enumerate()))
        time.sleep(0.002)

    def batch() -> None:
        list(iter_in_threads(work, list(range(100)), workers=8))

    batches = [threading.Thread(target=batch) for _ in range(20)]
    for thread in batches:
        thread.start()
    for thread in batches:
        thread.join()

    assert 1 <= peak <= POOL_SIZE


def test_the_callers_request_id_follows_the_work_into_the_threads():
    with request_id_scope("batch-42"):
        got = dict(iter_in_threads(lambda _: get_request_id(), [1, 2, 3], workers=3))

    assert set(got.values()) == {"batch-42"}


def test_no_items_starts_no_threads():
    assert list(iter_in_threads(lambda n: n, [], workers=4)) == []


@pytest.mark.django_db(transaction=True)
def test_workers_close_their_database_connections():
    from django.db import connections

    seen = []

    def work(_: int) -> None:
        from api_client.models import Exchange

        Exchange.objects.exists()
        seen.append(connections["default"])  # this thread's wrapper (not the proxy)

    list(iter_in_threads(work, list(range(20)), workers=4))

    assert seen and all(conn.connection is None for conn in seen)

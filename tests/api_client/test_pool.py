"""The worker pool: bounded, isolated failures, early stop, context follows the work."""

import threading
import time

import pytest

from api_client.context import get_request_id, request_id_scope
from api_client.pool import iter_in_threads


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


def test_stopping_early_starts_no_new_work_and_joins_the_workers():
    started = []

    def work(n: int) -> int:
        started.append(n)
        time.sleep(0.02)
        return n

    before = threading.active_count()
    for _ in iter_in_threads(work, list(range(100)), workers=2):
        break

    assert len(started) <= 4
    assert threading.active_count() == before


def test_the_callers_request_id_follows_the_work_into_the_threads():
    with request_id_scope("batch-42"):
        got = dict(iter_in_threads(lambda _: get_request_id(), [1, 2, 3], workers=3))

    assert set(got.values()) == {"batch-42"}


def test_no_items_starts_no_threads():
    assert list(iter_in_threads(lambda n: n, [], workers=4)) == []


@pytest.mark.django_db(transaction=True)
def test_workers_close_their_database_connections():
    from django.db import connection

    seen = []

    def work(_: int) -> None:
        from api_client.models import Exchange

        Exchange.objects.exists()
        seen.append(connection)  # this thread's connection wrapper

    list(iter_in_threads(work, list(range(20)), workers=4))

    assert seen and all(conn.connection is None for conn in seen)

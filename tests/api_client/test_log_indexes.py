"""The log's filters read the indexes made for them, and SQLite's sampled statistics do not
lead its planner astray (a million-row log is measured in bench/scale.py; here, the plans)."""

import pytest
from django.db import connection

from api_client.ledger import _one_row_count, analyze
from api_client.models import Exchange
from tests.helpers.exchanges import create_exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def log():
    for n in range(60):
        status = [200, 201, 204, 302, 404, 500, 503, None][n % 8]
        create_exchange(path=f"/items/{n}", status=status, method=["GET", "DELETE"][n % 2])


def plan(rows) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # on a tiny table it would rather scan and sort
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
        return rows.order_by("-created_at", "-id")[:100].explain()


def in_date_order(found: str) -> bool:
    return "TEMP B-TREE" not in found and "Sort" not in found


@pytest.mark.parametrize("status_class", [0, 1, 3, 4, 5])
def test_a_status_class_other_than_2xx_reads_a_partial_index_in_date_order(log, status_class):
    found = plan(Exchange.objects.in_status_class(status_class))

    # SQLite takes the class's own range; PostgreSQL, on a table this small, may take either.
    expected = {"exchange_status_class_idx"}
    if connection.vendor == "postgresql":
        expected.add("exchange_unusual_idx")
    assert any(index in found for index in expected) and in_date_order(found), found


def test_failures_read_the_index_of_calls_that_did_not_succeed(log):
    found = plan(Exchange.objects.failed())

    assert "exchange_unusual_idx" in found and in_date_order(found), found


@pytest.mark.parametrize(
    ("status_class", "paths"),
    [
        (2, {0, 1, 2}),
        (3, {3}),
        (4, {4}),
        (5, {5, 6}),
        (0, {7}),  # no answer, and not in progress
    ],
)
def test_the_terms_added_for_the_index_change_no_answer(log, status_class, paths):
    found = Exchange.objects.in_status_class(status_class).values_list("path", flat=True)

    assert {int(path.rsplit("/", 1)[1]) % 8 for path in found} == paths
    assert len(found) == sum(1 for n in range(60) if n % 8 in paths)


def test_a_call_in_progress_is_neither_failed_nor_without_an_answer(log):
    pending = create_exchange(path="/now", status=None, state=Exchange.State.PENDING)

    assert pending not in Exchange.objects.failed()
    assert pending not in Exchange.objects.in_status_class(0)
    assert pending in Exchange.objects.in_state(Exchange.State.PENDING)


def test_after_analyze_an_unindexed_filter_walks_the_date_index(log):
    analyze()
    if connection.vendor == "sqlite":
        # What a sampled ANALYZE of a million rows said: one index far "smaller" than the
        # rest, and the planner scanned it and sorted, rather than walk the date index.
        with connection.cursor() as cursor:
            cursor.execute("UPDATE sqlite_stat1 SET stat = '6 1 1' WHERE idx = 'exchange_kind_idx'")
            cursor.execute("ANALYZE sqlite_schema")
        assert not in_date_order(plan(Exchange.objects.filter(method="DELETE")))
        with connection.cursor() as cursor:
            _one_row_count(cursor, Exchange._meta.db_table)  # as analyze() does after sampling
            cursor.execute(
                "SELECT stat FROM sqlite_stat1 JOIN sqlite_schema ON name = idx "
                "WHERE tbl = 'api_client_exchange' AND sql NOT LIKE '%% WHERE %%'"
            )
            counts = {stat.split(" ")[0] for (stat,) in cursor.fetchall()}
        assert counts == {str(Exchange.objects.count())}

    found = plan(Exchange.objects.filter(method="DELETE"))

    assert "exchange_recent_idx" in found and in_date_order(found), found

"""The exchange list on a large table: bounded queries, no full count, no full-table scans."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from api_client.admin.changelist import CappedPaginator
from api_client.models import Exchange
from tests.helpers.exchanges import make_exchange

pytestmark = pytest.mark.django_db

LIST = reverse("admin:api_client_exchange_changelist")
ROWS = 100_000


class SmallCap(CappedPaginator):
    cap = 5


@pytest.mark.parametrize(
    ("rows", "count", "capped", "pages"),
    [(0, 0, False, 1), (3, 3, False, 2), (5, 5, False, 3), (6, 5, True, 3), (50, 5, True, 3)],
)
def test_the_paginator_counts_up_to_its_cap(rows, count, capped, pages):
    Exchange.objects.bulk_create([make_exchange() for _ in range(rows)])

    paginator = SmallCap(Exchange.objects.all(), per_page=2)

    assert (paginator.count, paginator.capped, paginator.num_pages) == (count, capped, pages)


def test_the_paginator_takes_lists_too():
    paginator = SmallCap(list(range(9)), per_page=2)

    assert (paginator.count, paginator.capped) == (5, True)


def test_past_the_cap_the_list_says_more_than(admin_client, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "cap", 60)
    Exchange.objects.bulk_create([make_exchange() for _ in range(61)])

    content = admin_client.get(LIST).content.decode()

    assert "more than 60 exchanges" in content
    assert "Select all matching exchanges (more than 60)" in content


def test_below_the_cap_the_list_says_how_many(admin_client):
    Exchange.objects.bulk_create([make_exchange() for _ in range(3)])

    content = admin_client.get(LIST).content.decode()

    assert "3 exchanges" in content
    assert "more than" not in content


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def spread() -> None:
    Exchange.objects.bulk_create(
        [
            make_exchange(created_at=at(2025, 12, 31, 23, 59)),
            make_exchange(created_at=at(2026, 2, 1, 0, 0)),
            make_exchange(created_at=at(2026, 2, 14, 12, 0)),
            make_exchange(created_at=at(2026, 2, 28, 23, 59, 59)),
            make_exchange(created_at=at(2026, 5, 3, 8, 0), status=500),
        ]
    )


def hierarchy(admin_client, query: str = "") -> list[str]:
    content = admin_client.get(f"{LIST}?{query}").content.decode()
    nav = content.split('<nav class="toplinks"', 1)[1].split("</nav>", 1)[0]
    return [line.strip() for line in nav.splitlines() if "created_at__" in line]


def test_the_date_hierarchy_offers_only_years_months_and_days_with_rows(admin_client, spread):
    years = hierarchy(admin_client)
    months = hierarchy(admin_client, "created_at__year=2026")
    days = hierarchy(admin_client, "created_at__year=2026&created_at__month=2")

    assert [">2025<" in y or ">2026<" in y for y in years] == [True, True]
    assert len(years) == 2
    assert ["February 2026" in m for m in months] == [True, False]
    assert any("May 2026" in m for m in months)
    assert len(months) == 2
    assert [d.split(">")[1].split("<")[0] for d in days if "created_at__day" in d] == [
        "February 1",
        "February 14",
        "February 28",
    ]


def test_the_date_hierarchy_follows_the_other_filters(admin_client, spread):
    months = hierarchy(admin_client, "created_at__year=2026&status_class=5")

    assert len(months) == 1 and "May 2026" in months[0]


def test_a_chosen_day_lists_its_rows(admin_client, spread):
    response = admin_client.get(
        f"{LIST}?created_at__year=2026&created_at__month=2&created_at__day=28"
    )

    assert response.context["cl"].result_count == 1
    assert "February 28" in response.content.decode()


def test_the_date_hierarchy_starts_at_the_month_when_all_rows_share_it(admin_client):
    Exchange.objects.bulk_create([make_exchange(created_at=at(2026, 3, d, 10)) for d in (2, 2, 9)])

    days = hierarchy(admin_client)

    assert len(days) == 3  # "2026" back link, and March 2 and 9
    assert any("March 9" in d for d in days)


def test_an_empty_list_has_an_empty_hierarchy(admin_client):
    assert hierarchy(admin_client) == []


# --- 100,000 exchanges ---------------------------------------------------------------------

PAGES = [
    "",
    "p=2",
    "p=200",
    "status_class=5",
    "status_class=0",
    "error=yes&method=POST",
    "kind__exact=token",
    "request_id=req-77",
    "batch_id=batch-3",
    "q=items/4242",
    "q=req-77",
    "o=-7",
    "o=4",
    "created_at__year=2026",
    "created_at__year=2026&created_at__month=11",
    "created_at__year=2026&created_at__month=11&created_at__day=20",
    "created_at__gte=2026-11-20T00%3A00%3A00%2B00%3A00",
]


def test_a_list_of_100000_exchanges_takes_a_few_queries_and_never_counts_them_all(
    admin_client, django_assert_max_num_queries
):
    end = at(2026, 11, 25, 12)
    statuses = [200, 200, 201, 404, 503, None]
    for start in range(0, ROWS, 10_000):
        Exchange.objects.bulk_create(
            [
                make_exchange(
                    created_at=end - timedelta(seconds=30 * n),
                    kind="token" if n % 1000 == 0 else "api",
                    method="POST" if n % 4 == 0 else "GET",
                    path=f"/items/{n}",
                    status=statuses[n % 6],
                    duration_ms=float(n % 997),
                    request_id=f"req-{n // 10}",
                    batch_id=f"batch-{n // 100}" if n % 3 == 0 else "",
                )
                for n in range(start, start + 10_000)
            ],
            batch_size=2_000,
        )
    assert Exchange.objects.count() == ROWS

    for query in PAGES:
        with (
            CaptureQueriesContext(connection) as queries,
            django_assert_max_num_queries(8),
        ):
            response = admin_client.get(f"{LIST}?{query}")
        assert response.status_code == 200, query
        assert response.context["cl"].result_list, query
        for sql in (q["sql"].upper() for q in queries.captured_queries):
            if "COUNT(" in sql:
                assert "LIMIT" in sql, f"{query}: uncapped count {sql[:200]}"
            assert "DISTINCT" not in sql, f"{query}: {sql[:200]}"

    assert "more than 10000 exchanges" in admin_client.get(LIST).content.decode()

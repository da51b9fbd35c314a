"""The exchange log at 10,000, 100,000 and 1,000,000 rows: every admin page and JSON endpoint
in milliseconds and queries, purge in rows per second, and bytes per row.

The table is filled with generated rows (30 days of calls: a spread of paths, statuses,
methods, kinds, request ids, batch ids and actors, a few left pending) and their per-minute
rollup, straight through the database; then each page is fetched in-process with Django's
test client as a logged-in superuser, three times, and the median is reported, with the
number of queries it ran. A page whose time grows with the table is a page that reads the
table rather than an index. Between sizes the table only grows, so the same pages are
measured at each size.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--repeat 3]
    DATABASE_URL=postgres://... .venv/bin/python bench/scale.py     # on PostgreSQL
"""

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from common import setup_django

PATHS = ["/items", "/items/{n}", "/echo", "/whoami", "/orders/{n}/lines", "/learners/{n}/events"]
# Pages and endpoints, by what they are for; {id} is an exchange's, {rid} a request id.
PAGES = [
    ("admin list", "/admin/api_client/exchange/"),
    ("admin list page 50", "/admin/api_client/exchange/?p=50"),
    ("admin 5xx", "/admin/api_client/exchange/?status_class=5"),
    ("admin failed", "/admin/api_client/exchange/?error=yes"),
    ("admin succeeded", "/admin/api_client/exchange/?error=no"),
    ("admin 2xx", "/admin/api_client/exchange/?status_class=2"),
    ("admin 3xx (none)", "/admin/api_client/exchange/?status_class=3"),
    ("admin no response", "/admin/api_client/exchange/?status_class=0"),
    ("admin unknown", "/admin/api_client/exchange/?state=unknown"),
    ("admin token requests", "/admin/api_client/exchange/?kind__exact=token"),
    ("admin method DELETE", "/admin/api_client/exchange/?method=DELETE"),
    ("admin request id", "/admin/api_client/exchange/?request_id={rid}"),
    ("admin batch id", "/admin/api_client/exchange/?batch_id=batch-7"),
    ("admin actor", "/admin/api_client/exchange/?actor=reader-3"),
    ("admin slowest", "/admin/api_client/exchange/?o=-7"),
    ("admin search rare path", "/admin/api_client/exchange/?q=learners/4242"),
    ("admin search common path", "/admin/api_client/exchange/?q=items"),
    ("admin search request id", "/admin/api_client/exchange/?q={rid}"),
    ("admin year", "/admin/api_client/exchange/?created_at__year={year}"),
    ("admin day", "/admin/api_client/exchange/?created_at__year={year}&created_at__month={month}"
                  "&created_at__day={day}"),
    ("admin detail", "/admin/api_client/exchange/{id}/change/"),
    ("admin summary", "/admin/api_client/exchangesummary/"),
    ("admin tokens", "/admin/api_client/token/"),
    ("json history", "/api/exchanges"),
    ("json history 5xx", "/api/exchanges?status=5xx"),
    ("json history 4xx", "/api/exchanges?status=4xx"),
    ("json history batch", "/api/exchanges?batch_id=batch-7"),
    ("json history page 100", "/api/exchanges?page=100"),
    ("json exchange", "/api/exchanges/{id}"),
]  # fmt: skip


def state_of(status: int | None, n: int) -> str:
    if status is not None:
        return "answered"
    return "pending" if n % 20_000 == 7 else "failed"


def fill(count: int, start: int, now: datetime) -> None:
    """Add ``count`` exchanges (and their rollup) spread over the 30 days before ``now``, in
    the order of their times."""
    from collections import Counter

    from django.db import transaction

    from api_client.models import Exchange, ExchangeRollup

    rng = random.Random(start)
    chunk = 20_000
    for first in range(start, start + count, chunk):
        rows, counts = [], Counter()
        for n in range(first, min(first + chunk, start + count)):
            # Oldest first, as a log is written: ids follow time (purge deletes runs of pages).
            created = now - timedelta(days=30) * (1 - (n - start + rng.random()) / count)
            status = rng.choices([200, 201, 404, 429, 500, 503, None], [70, 10, 8, 3, 2, 2, 1])[0]
            token = n % 500 == 0
            path = rng.choice(PATHS).format(n=rng.randrange(10_000))
            exchange = Exchange(
                created_at=created,
                kind="token" if token else "api",
                state=state_of(status, n),
                settle_by=created + timedelta(minutes=2) if status is None else None,
                method="POST" if token else rng.choice(["GET"] * 6 + ["POST", "PUT", "DELETE"]),
                url=f"https://api.example/v1{path}",
                path=path,
                request_headers={
                    "Accept": "application/json",
                    "Authorization": "Bearer [redacted]",
                },
                status=status,
                response_headers={"Content-Type": "application/json"},
                response_body=f'{{"id": {n}, "ok": true, "items": [1, 2, 3]}}',
                duration_ms=rng.lognormvariate(3, 0.8),
                attempts=1,
                thread="api-worker-3 (140000000000000)",
                request_id=f"req-{n:08d}",
                batch_id=f"batch-{n // 1000}" if n % 3 == 0 else "",
                actor=f"reader-{n % 7}",
            )
            rows.append(exchange)
            if exchange.state != "pending":
                counts[ExchangeRollup.key_of(exchange)] += 1
        with transaction.atomic():
            Exchange.objects.bulk_create(rows, batch_size=2000)
            ExchangeRollup.objects.add(counts)


def size_of_the_log() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size('api_client_exchange')")
        else:
            cursor.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'api_client_exchange' OR name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name = 'api_client_exchange')"
            )
        return cursor.fetchone()[0]


def measure(client, url: str, repeat: int) -> tuple[float, int, int]:
    """(median ms, queries, status) of GET ``url``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, status = [], 0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - started) * 1000)
        queries, status = len(captured), response.status_code
    return statistics.median(times), queries, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    directory = setup_django(DJANGO_ALLOWED_HOSTS="testserver", DJANGO_SECURE_SSL_REDIRECT="0")
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from api_client.models import Exchange

    settings.STATIC_ROOT = directory / "static"  # the pages name hashed static files
    call_command("collectstatic", "--no-input", verbosity=0)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("scale"))
    now = datetime.now(UTC)
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name, _ in PAGES}
    per_row = []
    filled = 0
    for size in sizes:
        started = time.perf_counter()
        fill(size - filled, filled, now)
        from api_client.ledger import analyze

        analyze()  # as the process's ledger writer does once an hour (SQLite)
        if connection.vendor == "postgresql":  # as autovacuum would soon after the fill:
            with connection.cursor() as cursor:  # statistics, and the visibility map that
                cursor.execute("VACUUM ANALYZE api_client_exchange")  # index-only scans use
        filled = size
        fill_seconds = time.perf_counter() - started
        sample = (
            Exchange.objects.filter(request_id="req-00004242").first() or Exchange.objects.first()
        )
        values = {
            "id": sample.pk,
            "rid": sample.request_id,
            "year": now.year,
            "month": now.month,
            "day": (now - timedelta(days=1)).day,
        }
        for name, url in PAGES:
            results[name].append(measure(client, url.format(**values), args.repeat))
        per_row.append(size_of_the_log() / size)
        print(f"filled {size:,} rows in {fill_seconds:.0f} s", flush=True)

    # Purge: the oldest tenth of the largest table, batches sized by time.
    cutoff = now - timedelta(days=27)
    old = Exchange.objects.created_before(cutoff)
    doomed = old.count()
    started = time.perf_counter()
    deleted = old.purge()
    purge_seconds = time.perf_counter() - started

    print(f"\nexchange log on {connection.vendor}; median of {args.repeat} fetches, ms (queries)")
    print(f"{'page':<26}" + "".join(f"{size:>16,}" for size in sizes))
    for name, _ in PAGES:
        cells = "".join(
            f"{ms:>10.1f} ({queries:>2}){'' if status == 200 else '!' + str(status):>2}"
            for ms, queries, status in results[name]
        )
        print(f"{name:<26}{cells}")
    print(f"{'bytes per row':<26}" + "".join(f"{b:>16,.0f}" for b in per_row))
    print(
        f"\npurge: {deleted:,} of {doomed:,} rows older than 27 days in {purge_seconds:.1f} s: "
        f"{deleted / purge_seconds:,.0f} rows/s (aim 20,000/s)"
    )
    worst = max(ms for runs in results.values() for ms, _, _ in runs)
    print(f"slowest page at any size: {worst:.1f} ms (aim: all under 200 ms at 1M, none growing)")


if __name__ == "__main__":
    main()

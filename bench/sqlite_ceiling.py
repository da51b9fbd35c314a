"""SQLite write ceiling: how many exchanges per second the database takes from 16 threads.

Two ways of writing the same row into the same table of a SQLite file in WAL mode, each from
16 threads that open their own connection, in rounds that alternate so that machine noise
hits both alike:

- raw: Python's ``sqlite3`` with the PRAGMAs and busy timeout from ``pocclient.settings``,
  one INSERT per commit (autocommit), its values prepared once: the ceiling;
- orm: ``Exchange.objects.record(Exchange(...))``, the exchange log's INSERT as every API
  call runs it (a model instance built, its values prepared, one commit per row), each
  thread closing its Django connection when done;
- and for comparison ``Exchange(...).save()``, which ``record`` replaces.

The ratio raw / orm is what Django and our code cost on top of SQLite itself.

    .venv/bin/python bench/sqlite_ceiling.py [--threads 16] [--rows 500] [--rounds 5]
"""

import argparse
import json
import sqlite3
import threading
import time

from common import median, setup_django

ROW = {
    "kind": "api",
    "method": "GET",
    "url": "http://127.0.0.1:8000/sandbox/api/items/42?expand=1",
    "path": "/items/42?expand=1",
    "request_headers": {
        "User-Agent": "pocclient/0.1",
        "Accept": "application/json",
        "Authorization": "Bearer [redacted]",
    },
    "request_body": "",
    "status": 200,
    "response_headers": {"Content-Type": "application/json", "Content-Length": "64"},
    "response_body": json.dumps({"id": 42, "name": "item 42", "data": {"n": 42}}),
    "response_truncated": False,
    "duration_ms": 12.5,
    "attempts": 1,
    "error": "",
    "error_code": "",
    "thread": "api-worker-3 (140000000000000)",
    "request_id": "0123456789abcdef0123456789abcdef",
    "batch_id": "",
}


def run_threads(work, threads: int) -> float:
    """Seconds for ``threads`` threads to run ``work()`` each, started together."""
    barrier = threading.Barrier(threads + 1)

    def body() -> None:
        barrier.wait()
        work()

    workers = [threading.Thread(target=body) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rows", type=int, default=500, help="rows per thread per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    setup_django()
    from django.conf import settings
    from django.db import connection, connections
    from django.utils import timezone

    from api_client.models import Exchange

    assert connection.vendor == "sqlite", "this benchmark measures SQLite"
    path = connection.settings_dict["NAME"]
    busy_timeout = settings.SQLITE_BUSY_TIMEOUT
    pragmas = [f"PRAGMA {name}={value}" for name, value in settings.SQLITE_PRAGMAS.items()]
    columns = [*ROW, "created_at"]
    # Names from our own model, values as parameters.
    table, placeholders = Exchange._meta.db_table, ", ".join("?" * len(columns))
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
    prepared = [json.dumps(v) if isinstance(v, dict) else v for v in ROW.values()]
    raw_values = (*prepared, timezone.now().isoformat())

    def raw() -> None:
        db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        for pragma in pragmas:
            db.execute(pragma)
        for _ in range(args.rows):
            db.execute(insert, raw_values)
        db.close()

    def orm() -> None:
        try:
            for _ in range(args.rows):
                Exchange.objects.record(Exchange(**ROW))
        finally:
            connections.close_all()

    def orm_save() -> None:
        try:
            for _ in range(args.rows):
                Exchange(**ROW).save(force_insert=True)
        finally:
            connections.close_all()

    rows = args.threads * args.rows
    run_threads(raw, args.threads), run_threads(orm, args.threads)  # warm up
    before = Exchange.objects.count()
    raw_rates, orm_rates, save_rates = [], [], []
    for _ in range(args.rounds):
        raw_rates.append(rows / run_threads(raw, args.threads))
        orm_rates.append(rows / run_threads(orm, args.threads))
        save_rates.append(rows / run_threads(orm_save, args.threads))
    written = Exchange.objects.count() - before
    assert written == 3 * rows * args.rounds, written
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]

    raw_rate, orm_rate, save_rate = median(raw_rates), median(orm_rates), median(save_rates)
    print(
        f"{args.threads} threads x {args.rows} rows, one commit each, median of {args.rounds} "
        f"rounds (SQLite {sqlite3.sqlite_version}, journal_mode={journal}, "
        f"synchronous={settings.SQLITE_PRAGMAS['synchronous']})"
    )
    print(f"{'':<6}{'commits/s':>11}{'us/commit':>11}")
    print(f"{'raw':<6}{raw_rate:>11,.0f}{1e6 / raw_rate:>11.1f}")
    print(f"{'orm':<6}{orm_rate:>11,.0f}{1e6 / orm_rate:>11.1f}")
    print(f"{'save()':<6}{save_rate:>11,.0f}{1e6 / save_rate:>11.1f}   (for comparison)")
    print(f"raw / orm: {raw_rate / orm_rate:.2f}   (raw / save(): {raw_rate / save_rate:.2f})")
    print(f"every row written: {written} (checked)")


if __name__ == "__main__":
    main()

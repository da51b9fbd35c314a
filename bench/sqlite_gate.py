"""SQLite's write lock under contention from several processes: Django's backend against ours.

``--processes`` processes of ``--threads`` threads each run short write transactions on one
SQLite file (``atomic``: one INSERT, then ``--hold`` ms of work inside, then ``--pause`` ms
outside, as a ledger writer or a job runner does), first through Django's SQLite backend,
whose waiters sleep in SQLite's busy handler, then through ``pocclient.db.sqlite3``, whose
waiters queue at its gate; rounds alternate. Reported: transactions per second and the time
from asking for a transaction to its commit (p50, p99, max), with ratios.

    .venv/bin/python bench/sqlite_gate.py [--processes 2] [--threads 4] [--transactions 300]
        [--hold 0.5] [--pause 3] [--rounds 3]
"""

import argparse
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from common import median

ENGINES = {"django": "django.db.backends.sqlite3", "gated": "pocclient.db.sqlite3"}


def process(engine: str, path: str, args: argparse.Namespace, out: multiprocessing.Queue) -> None:
    """One process: its threads' transactions, and their latencies, reported on ``out``."""
    import django
    from django.conf import settings

    from pocclient.settings import SQLITE_OPTIONS

    settings.configure(
        DATABASES={"default": {"ENGINE": engine, "NAME": path, "OPTIONS": SQLITE_OPTIONS}}
    )
    django.setup()
    from django.db import connection, connections, transaction

    latencies: list[float] = []

    def thread() -> None:
        try:
            for n in range(args.transactions):
                time.sleep(args.pause / 1000)
                asked = time.perf_counter()
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("INSERT INTO t (v) VALUES (%s)", [n])
                    time.sleep(args.hold / 1000)
                latencies.append(time.perf_counter() - asked)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=thread) for _ in range(args.threads)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((time.perf_counter() - started, latencies))


def round_of(engine: str, args: argparse.Namespace) -> tuple[float, list[float]]:
    """Transactions per second and every latency of one round, on a fresh file."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "gate.sqlite3")
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        db.commit()
        spawn = multiprocessing.get_context("spawn")
        out = spawn.Queue()
        workers = [
            spawn.Process(target=process, args=(engine, path, args, out))
            for _ in range(args.processes)
        ]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=600) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        written = db.execute("SELECT count(*) FROM t").fetchone()[0]
        db.close()
    total = args.processes * args.threads * args.transactions
    assert written == total, (written, total)
    seconds = max(elapsed for elapsed, _ in results)
    return total / seconds, sorted(x for _, latencies in results for x in latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=300, help="per thread per round")
    parser.add_argument("--hold", type=float, default=0.5, help="ms inside each transaction")
    parser.add_argument("--pause", type=float, default=3.0, help="ms between transactions")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rates: dict[str, list[float]] = {name: [] for name in ENGINES}
    marks: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ENGINES}
    for _ in range(args.rounds):
        for name, engine in ENGINES.items():
            rate, latencies = round_of(engine, args)
            rates[name].append(rate)

            def at(share: float, latencies: list[float] = latencies) -> float:
                return latencies[int(share * (len(latencies) - 1))] * 1000

            marks[name].append((at(0.5), at(0.99), latencies[-1] * 1000))

    print(
        f"{args.processes} processes x {args.threads} threads x {args.transactions} "
        f"transactions ({args.hold:g} ms inside, {args.pause:g} ms between), "
        f"median of {args.rounds} rounds, SQLite {sqlite3.sqlite_version}"
    )
    print(f"{'':<8}{'tx/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    summary = {}
    for name in ENGINES:
        p50, p99, top = (median([m[i] for m in marks[name]]) for i in range(3))
        summary[name] = (median(rates[name]), p50, p99, top)
        print(f"{name:<8}{summary[name][0]:>8,.0f}{p50:>9.2f}{p99:>9.2f}{top:>9.1f}")
    django_, gated = summary["django"], summary["gated"]
    print(
        f"gated / django: tx/s x{gated[0] / django_[0]:.2f}, p99 x{gated[2] / django_[2]:.2f}, "
        f"max x{gated[3] / django_[3]:.2f}; every transaction written (checked)"
    )


if __name__ == "__main__":
    main()

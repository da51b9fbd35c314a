"""Jobs at scale: planning, a job's throughput beside raw requests, memory, and the rate limit
as the API sees it.

- plan: N items planned (``jobs.planning.plan``: every call checked by the client, written
  in chunks), in items per second, beside a raw ``bulk_create`` of the same rows (no checks:
  the floor), in alternating rounds;
- run: N GETs to an API answering after DELAY, a job of concurrency C run by W
  ``manage.py db_worker`` processes, beside raw ``requests`` in a ``ThreadPoolExecutor`` of
  C threads (no token, no database), in alternating rounds, and the ideal N x DELAY / C;
- memory: the peak RSS (VmHWM) of a db_worker that ran a job of each size, and of
  ``manage.py send_batch FILE --detach`` planning one (when the command exists);
- rate: a job under ``POC_API_RATE_LIMIT=R/s`` run by a few db_worker processes against an
  API that stamps the moment each request arrives: the rate achieved, and the most calls any
  1 s window held there.

Loopback only: bench/stub_api.py in its own process (run, memory), and the hostile test API
in a thread of this one (rate: one clock for every arrival). SQLite file unless DATABASE_URL
says otherwise. Each part is bounded by --timeout.

    .venv/bin/python bench/jobs_scale.py [--parts plan,run,memory,rate]
        [--plan-items 100000] [--run-items 20000] [--delay 0.02] [--concurrency 64]
        [--workers 2] [--rounds 3] [--memory-sizes 10000,100000] [--rate 40]
        [--rate-seconds 15] [--rate-workers 3] [--timeout 900]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from common import ROOT, median, setup_django, stub_api


def sliding_max(moments: list[float], window: float) -> int:
    """The most of ``moments`` that any half-open window [t, t + window) holds."""
    moments = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moments[first] <= moment - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(step)


def api_environ(root: str, token_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "POC_API_BASE_URL": f"{root}/api/",
        "POC_API_TOKEN_URL": token_url,
        "POC_EMBEDDED_WORKER": "0",
        "POC_JOBS_BEAT": "1",
        "DJANGO_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def db_workers(count: int, environ: dict[str, str], logs: Path) -> Iterator[list[int]]:
    """``count`` db_worker processes, alive (their beats seen) when the block begins; yields
    their pids; killed when it ends."""
    from jobs.models import WorkerBeat

    command = [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval",
               "0.1", "-v", "0"]  # fmt: skip
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            with (logs / f"worker-{len(list(logs.iterdir()))}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log, stderr=log)
                )
        pids = [p.pid for p in processes]
        wait_for(
            lambda: WorkerBeat.objects.filter(pid__in=pids).count() >= count,
            60,
            "the workers' first beat",
            step=0.1,
        )
        yield pids
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


def run_to_the_end(job, parallel: int, timeout: float) -> float:
    """Seconds from enqueueing ``job``'s tasks to its end."""
    from jobs.models import Job
    from jobs.tasks import start

    started = time.perf_counter()
    start(job, parallel=parallel)
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, state=Job.State.FINISHED).exists(),
        timeout,
        f"the end of job {job.key}",
    )
    return time.perf_counter() - started


def forget(job) -> None:
    """Delete a job and its items (one DELETE for the items: nothing refers to them)."""
    from jobs.models import Item

    Item.objects.filter(job_id=job.pk).delete()
    job.delete()


# --- (a) planning ----------------------------------------------------------------------------


def bench_plan(args: argparse.Namespace) -> None:
    from django.db import connection, transaction

    from api_client.client import ApiClient
    from api_client.conf import api_settings
    from jobs.models import Item, Job
    from jobs.planning import CHUNK, plan

    client = ApiClient(api_settings().with_overrides(BASE_URL="http://127.0.0.1:9/api/"))
    n = args.plan_items

    def requests() -> Iterator[tuple[int, dict]]:
        for i in range(n):
            yield i + 1, {"method": "POST", "path": f"items/{i}", "json": {"n": i, "name": "x"}}

    def planned() -> float:
        started = time.perf_counter()
        job = plan(client, requests(), concurrency=4)
        seconds = time.perf_counter() - started
        assert job.total == n
        forget(job)
        return seconds

    def raw() -> float:
        started = time.perf_counter()
        job = Job.objects.create(concurrency=4)
        chunk = []
        for i in range(n):
            body = json.dumps({"n": i, "name": "x"})
            chunk.append(Item(job=job, index=i, method="POST", path=f"/items/{i}", body=body))
            if len(chunk) >= CHUNK:
                Item.objects.bulk_create(chunk)
                chunk = []
        Item.objects.bulk_create(chunk)
        with transaction.atomic():
            Job.objects.filter(pk=job.pk).update(total=n, state=Job.State.CANCELLED)
        seconds = time.perf_counter() - started
        forget(job)
        return seconds

    planned(), raw()  # warm up: the database file, the client's checks
    plan_s, raw_s = [], []
    for _ in range(args.rounds):
        plan_s.append(planned())
        raw_s.append(raw())
    p, r = median(plan_s), median(raw_s)
    print(f"\n(a) planning {n:,} items on {connection.vendor}, median of {args.rounds} rounds")
    print(f"{'':<34}{'seconds':>9}{'items/s':>10}")
    print(f"{'plan (checked, chunked)':<34}{p:>9.2f}{n / p:>10,.0f}")
    print(f"{'raw bulk_create (no checks)':<34}{r:>9.2f}{n / r:>10,.0f}")
    print(f"plan / raw: {p / r:.2f}x the time   aim: 30,000 items/s planned")


# --- (b) a job beside raw requests -----------------------------------------------------------


def bench_run(args: argparse.Namespace, logs: Path) -> None:
    import requests
    from django.db import connection
    from requests.adapters import HTTPAdapter

    from api_client.client import ApiClient
    from api_client.conf import api_settings
    from jobs.planning import plan

    n, c, delay = args.run_items, args.concurrency, args.delay
    per_worker = -(-c // args.workers)
    with stub_api() as root:
        environ = api_environ(root, f"{root}/token", POC_API_MAX_WORKERS=str(per_worker))
        config = api_settings().with_overrides(
            BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token", MAX_WORKERS=c
        )
        client = ApiClient(config)
        calls = [{"method": "GET", "path": "slow", "query": {"delay": delay, "n": i}}
                 for i in range(n)]  # fmt: skip
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=c))

        def raw() -> float:
            def one(i: int) -> None:
                url = f"{root}/api/slow?delay={delay}&n={i}"
                session.get(url, timeout=(3.05, 30)).raise_for_status()

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=c) as pool:
                list(pool.map(one, range(n)))
            return time.perf_counter() - started

        def job() -> float:
            planned = plan(client, enumerate(calls, 1), concurrency=c)
            seconds = run_to_the_end(planned, args.workers, args.timeout)
            counts = planned.counts()
            assert counts["answered"] == n, counts
            forget(planned)
            return seconds

        with db_workers(args.workers, environ, logs):
            raw()
            job()  # warm up: connections, tokens, the database file
            raw_s, job_s = [], []
            for _ in range(args.rounds):
                raw_s.append(raw())
                job_s.append(job())
    ideal = n * delay / c
    r, j = median(raw_s), median(job_s)
    print(
        f"\n(b) {n:,} GETs answering after {delay * 1000:g} ms, concurrency {c}, job over "
        f"{args.workers} db_worker processes ({per_worker} each), {connection.vendor}, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'':<36}{'seconds':>9}{'x ideal':>9}{'calls/s':>9}")
    for name, s in (("ideal (N x delay / C)", ideal), ("raw requests, ThreadPoolExecutor", r),
                    ("job (db_worker processes)", j)):  # fmt: skip
        print(f"{name:<36}{s:>9.2f}{s / ideal:>9.2f}{n / s:>9,.0f}")
    print(f"job / raw: {j / r:.2f}   aim: within 1.1x of raw; every item answered (checked)")


# --- (c) memory ------------------------------------------------------------------------------


def bench_memory(args: argparse.Namespace, logs: Path) -> None:
    from api_client.client import ApiClient
    from api_client.conf import api_settings
    from jobs.models import Job
    from jobs.planning import plan

    sizes = [int(s) for s in args.memory_sizes.split(",")]
    command = ROOT / "jobs" / "management" / "commands" / "send_batch.py"
    rows = []
    with stub_api() as root:
        environ = api_environ(root, f"{root}/token")
        client = ApiClient(
            api_settings().with_overrides(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token")
        )
        for size in sizes:
            calls = ({"method": "GET", "path": f"items/{i}"} for i in range(size))
            job = plan(client, enumerate(calls, 1), concurrency=client.config.MAX_WORKERS)
            with db_workers(1, environ, logs) as (pid,):
                idle = peak_rss_mib(pid)
                seconds = run_to_the_end(job, 1, args.timeout)
                worker = peak_rss_mib(pid)
            assert job.counts()["answered"] == size
            forget(job)
            planner = None
            if command.exists():
                planner = send_batch_peak_rss(size, environ)
                for stray in Job.objects.filter(origin=Job.Origin.COMMAND):
                    forget(stray)
            rows.append((size, idle, worker, seconds, planner))
    print("\n(c) peak RSS (VmHWM), MiB; one db_worker (POC_API_MAX_WORKERS=16) per size")
    print(f"{'items':>9}{'worker idle':>13}{'worker after job':>18}{'job s':>8}"
          f"{'send_batch --detach':>21}")  # fmt: skip
    for size, idle, worker, seconds, planner in rows:
        shown = f"{planner:.1f}" if planner is not None else "n/a"
        print(f"{size:>9,}{idle:>13.1f}{worker:>18.1f}{seconds:>8.1f}{shown:>21}")
    if not command.exists():
        print("send_batch not measured: jobs/management/commands/send_batch.py does not exist")
    print("aim: the same peak at every size")


def send_batch_peak_rss(size: int, environ: dict[str, str]) -> float:
    """Peak RSS (MiB) of ``manage.py send_batch FILE --detach`` planning ``size`` calls."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as file:
        for i in range(size):
            file.write(json.dumps({"method": "POST", "path": f"items/{i}", "json": {"n": i}}))
            file.write("\n")
    try:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "send_batch", file.name, "--detach"],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(process.pid, 0)
        if status:
            raise RuntimeError(f"send_batch failed: {process.stderr.read().decode()[-2000:]}")
        process.stderr.close()
        return usage.ru_maxrss / 1024  # KiB on Linux
    finally:
        os.unlink(file.name)


# --- (d) the rate limit at the API's side ----------------------------------------------------


def bench_rate(args: argparse.Namespace, logs: Path) -> None:
    from django.db import connection

    from api_client.client import ApiClient
    from api_client.conf import api_settings
    from jobs.planning import plan
    from tests.helpers.hostile import CONFIG, serve_hostile

    rate, workers = args.rate, args.rate_workers
    n = rate * args.rate_seconds
    with serve_hostile() as server:
        environ = api_environ(
            server.url,
            f"{server.url}/oauth/token",
            POC_API_CLIENT_ID=CONFIG["client_id"],
            POC_API_CLIENT_SECRET=CONFIG["client_secret"],
            POC_API_RATE_LIMIT=f"{rate}/s",
            POC_API_MAX_WORKERS="4",
            POC_API_RETRIES="0",
        )
        client = ApiClient(api_settings().with_overrides(BASE_URL=f"{server.url}/api/"))
        calls = ({"method": "GET", "path": f"items/{i}"} for i in range(n))
        job = plan(client, enumerate(calls, 1), concurrency=4 * workers)
        with db_workers(workers, environ, logs):
            seconds = run_to_the_end(job, workers, args.timeout)
        assert job.counts()["answered"] == n
        moments = sorted(r.time for r in server.received if r.path.startswith("/api/"))
    assert len(moments) == n, len(moments)
    span = moments[-1] - moments[0]
    # The first R calls start at once; each R more need a window (1 s and the margin).
    achieved = (n - rate) / span
    print(
        f"\n(d) POC_API_RATE_LIMIT={rate}/s, {n:,} GETs over {workers} db_worker processes "
        f"(4 calls each at once), {connection.vendor}; arrivals stamped at the API"
    )
    print(f"job {seconds:.1f} s; arrivals span {span:.2f} s")
    print(f"achieved (N - R) / span: {achieved:.1f} calls/s = {achieved / rate:.1%} of {rate}/s"
          "   aim: 90%")  # fmt: skip
    for window in (0.98, 1.0, 1.02, 1.05):
        print(f"most calls in any {window:.2f} s window: {sliding_max(moments, window)}")
    print(f"aim: never more than {rate} in any 1 s window")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="plan,run,memory,rate")
    parser.add_argument("--plan-items", type=int, default=100_000)
    parser.add_argument("--run-items", type=int, default=20_000)
    parser.add_argument("--delay", type=float, default=0.02, help="server latency, seconds")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="db_worker processes (run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-sizes", default="10000,100000")
    parser.add_argument("--rate", type=int, default=40, help="calls per second (rate)")
    parser.add_argument("--rate-seconds", type=int, default=15)
    parser.add_argument("--rate-workers", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds a job may take")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - {"plan", "run", "memory", "rate"}:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    directory = setup_django()
    logs = directory / "logs"
    logs.mkdir()
    print(f"jobs at scale; {os.cpu_count()} CPUs; worker logs in {logs}", flush=True)
    if "plan" in parts:
        bench_plan(args)
    if "run" in parts:
        bench_run(args, logs)
    if "memory" in parts:
        bench_memory(args, logs)
    if "rate" in parts:
        bench_rate(args, logs)


if __name__ == "__main__":
    main()

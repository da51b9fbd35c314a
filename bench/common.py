"""What the benchmarks share: a throwaway database, a stub API in its own process, timing."""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_SECRET_KEY = "benchmark-only-" + "x" * 40  # never used outside a benchmark


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def stub_api(port: int | None = None) -> Iterator[str]:
    """Start bench/stub_api.py in its own process (on ``port``, or a free one); yields its root
    URL; kills it after. Killing is abrupt on purpose: tests use it to stop an API mid-batch."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "stub_api.py"), str(port)])
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def sandbox_server(*, workers: int = 1, threads: int = 8, **environ: str) -> Iterator[str]:
    """Serve this project (sandbox mounted) with gunicorn in its own processes, on its own
    migrated SQLite file; yields its root URL. ``environ`` adds settings, e.g.
    ``POC_SANDBOX_TOKEN_LIFETIME``."""
    directory = Path(tempfile.mkdtemp(prefix="pocclient-sandbox-"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pocclient.settings",
        "DATABASE_URL": f"sqlite:///{directory / 'sandbox.sqlite3'}",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        "POC_SANDBOX": "1",
        **environ,
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], env=env, check=True, cwd=ROOT)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "pocclient.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def setup_django(**environ: str) -> Path:
    """Configure Django as in production (debug off) on a fresh, migrated SQLite file (or
    DATABASE_URL if set). With debug on, Django would keep every query and, on SQLite, run a
    second statement per query to show its parameters: a cost production does not pay."""
    directory = Path(tempfile.mkdtemp(prefix="pocclient-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{directory / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocclient.settings")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", BENCH_SECRET_KEY)
    os.environ.update(environ)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import logging

    # Log lines are formatted as in production, then dropped: their cost is measured, but
    # the terminal does not scroll 10,000 lines.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    return directory


def per_call_seconds(run: Callable[[int], None], calls: int, rounds: int) -> list[float]:
    """Seconds per call of ``run(calls)``, one figure per round."""
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        run(calls)
        figures.append((time.perf_counter() - started) / calls)
    return figures


def median(values: list[float]) -> float:
    return statistics.median(values)

"""What the benchmarks share: a throwaway database, a stub API in its own process, timing."""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_SECRET_KEY = "benchmark-only-" + "x" * 40  # never used outside a benchmark
# A Fernet key (32 bytes, base64), never used outside a benchmark.
BENCH_ENCRYPTION_KEY = "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU="


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


@dataclass
class Served:
    """A running server of this project: where it listens, its database file, its log."""

    url: str
    database: Path
    log: Path
    environ: dict[str, str]
    process: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL the server and every process it started (a crash, not a shutdown)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def manage(self, *args: str, **environ: str) -> None:
        """Run a management command against this server's database and settings (quietly,
        unless it fails)."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env={**self.environ, **environ},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")


@contextmanager
def project_server(
    *,
    workers: int = 1,
    threads: int = 8,
    runserver: bool = False,
    static: bool = False,
    **environ: str,
) -> Iterator[Served]:
    """Serve this project in its own processes with debug off, on its own migrated SQLite file,
    until the block ends: gunicorn (gthread, ``workers`` x ``threads``, its gunicorn.conf.py
    otherwise) or, with ``runserver``, Django's development server. Both write what they
    print, access log included, to one log file, all removed when the block ends. ``static``
    collects the static files that the console's pages need. ``environ`` adds settings."""
    directory = Path(tempfile.mkdtemp(prefix="pocclient-server-"))
    database, log = directory / "db.sqlite3", directory / "server.log"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pocclient.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
        "POC_ENCRYPTION_KEY": BENCH_ENCRYPTION_KEY,
        "POC_EMBEDDED_WORKER": "1",  # /api/batch makes a job: a worker in the server runs it
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_STATIC_ROOT": str(directory / "static"),
        **environ,
    }
    served = Served(f"http://127.0.0.1:{port}", database, log, env)
    served.manage("migrate", "--no-input")
    if static:
        served.manage("collectstatic", "--no-input")
    manage = [sys.executable, str(ROOT / "manage.py")]
    if runserver:
        command = [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
    else:
        command = [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
            *("--workers", str(workers), "--threads", str(threads)),
        ]
    with log.open("w") as output:
        # A session of its own, so that a test can kill it with its workers (Served.kill).
        process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served.process = process
    try:
        wait_for_port(port)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def sandbox_server(*, workers: int = 1, threads: int = 8, **environ: str) -> Iterator[Served]:
    """This project serving only its sandbox (``/sandbox/``), as the API under test.
    ``environ`` adds settings, e.g. ``POC_SANDBOX_TOKEN_LIFETIME``."""
    with project_server(
        workers=workers,
        threads=threads,
        POC_SANDBOX="1",
        DJANGO_LOG_LEVEL=environ.pop("DJANGO_LOG_LEVEL", "WARNING"),
        **environ,
    ) as served:
        yield served


def setup_django(**environ: str) -> Path:
    """Configure Django as in production (debug off) on a fresh, migrated SQLite file (or
    DATABASE_URL if set). With debug on, Django would keep every query and, on SQLite, run a
    second statement per query to show its parameters: a cost production does not pay."""
    directory = Path(tempfile.mkdtemp(prefix="pocclient-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{directory / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocclient.settings")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", BENCH_SECRET_KEY)
    os.environ.setdefault("POC_ENCRYPTION_KEY", BENCH_ENCRYPTION_KEY)
    os.environ.update(environ)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import logging

    # Log lines are formatted as in production, then dropped: their cost is measured, but
    # the terminal does not scroll 10,000 lines.
    for handler in logging.getLogger().handlers:
        listener = getattr(handler, "listener", None)  # lines written by a thread of their own
        for writer in [handler, *(listener.handlers if listener else ())]:
            if isinstance(writer, logging.StreamHandler):
                writer.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
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

"""Web load: pocclient's console API under many concurrent browsers, under gunicorn and runserver.

The API is the sandbox, served by a gunicorn of its own (2 workers x 32 threads) with 10 ms
of latency on every call (``?delay=0.01``, the token endpoint included) and tokens that live
``--token-lifetime`` seconds, so that tokens fall due again and again during the run.

pocclient runs as in production (debug off, its own SQLite file in WAL mode, INFO logs), under
gunicorn (gthread, 2 workers x 16 threads, gunicorn.conf.py otherwise) and then under
``manage.py runserver``. A bounded load generator (``--clients`` threads, ``--requests``
requests, ``--time-limit`` seconds, whichever ends first) logs in once and sends, per ten
requests: one ``POST /_token_refresh``, one ``POST /api/batch`` of four calls at concurrency
four, eight ``POST /api/send``. It reports requests/s, p50/p99 latency, 5xx answers, the
lines of the server log with ``database is locked`` or ``ProgrammingError`` (must be 0),
the API calls pocclient answered for against the exchanges in its database (must match
exactly), and the token grants against the times a token fell due (one grant per expiry,
across both gunicorn processes).

The baseline, in the same run: the same load generator calling the sandbox directly (GET
``echo?delay=0.01`` with a bearer token), which is what a call costs without pocclient.

    .venv/bin/python bench/web_load.py [--requests 20000] [--clients 64] [--time-limit 600]
                                       [--token-lifetime 10] [--servers gunicorn,runserver]
"""

import argparse
import itertools
import json
import math
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from common import Served, project_server, sandbox_server

DELAY = "0.01"
PASSWORD = "web-load-benchmark-password-1"  # noqa: S105 (a throwaway login on a throwaway database)
CALL = {"method": "GET", "path": "echo", "query": {"delay": DELAY}}
BATCH_SIZE = 4


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no HTTP answer at all
    seconds: float
    calls: int = 0  # API calls pocclient answered for
    error: str = ""


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0  # epoch seconds
    last_answer: float = 0.0  # epoch seconds when the last answer came back
    seconds: float = 0.0

    def latencies(self, kind: str | None = None) -> list[float]:
        return sorted(o.seconds for o in self.outcomes if kind is None or o.kind == kind)


def percentile(ordered: list[float], percent: float) -> float:
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] if ordered else math.nan


def run_load(
    work: Callable[[requests.Session, int], Outcome],
    prepare: Callable[[requests.Session], None],
    kind_of: Callable[[int], str],
    *,
    total: int,
    clients: int,
    time_limit: float,
) -> Run:
    """``total`` requests from ``clients`` threads, or as many as ``time_limit`` allows."""
    run = Run()
    guard = threading.Lock()
    issued = 0
    deadline = time.monotonic() + time_limit

    def next_index() -> int | None:
        nonlocal issued
        with guard:
            if issued >= total or time.monotonic() > deadline:
                return None
            issued += 1
            return issued - 1

    def client() -> None:
        with requests.Session() as session:
            session.trust_env = False
            prepare(session)
            while (index := next_index()) is not None:
                started = time.perf_counter()
                try:
                    outcome = work(session, index)
                except requests.RequestException as exc:
                    reason = re.sub(r"0x[0-9a-f]+", "", str(exc))[-90:]
                    error = f"{type(exc).__name__}: {reason}"
                    outcome = Outcome(kind_of(index), 0, 0.0, error=error)
                outcome.seconds = time.perf_counter() - started
                with guard:
                    run.outcomes.append(outcome)
                    run.last_answer = time.time()

    threads = [threading.Thread(target=client, name=f"load-{n}") for n in range(clients)]
    run.started, started = time.time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    return run


# --- the baseline: the sandbox called directly --------------------------------------------------


def direct_load(sandbox: Served, args: argparse.Namespace) -> Run:
    token_url = f"{sandbox.url}/sandbox/oauth/token"
    lock = threading.Lock()
    token = {"value": ""}

    def fresh_token(stale: str) -> str:
        with lock:  # one grant for all the clients that found it expired
            if token["value"] == stale:
                answer = requests.post(
                    token_url,
                    data={"grant_type": "client_credentials"},
                    auth=("sandbox-client", "sandbox-secret"),
                    timeout=30,
                )
                answer.raise_for_status()
                token["value"] = answer.json()["access_token"]
            return token["value"]

    url = f"{sandbox.url}/sandbox/api/echo?delay={DELAY}"

    def work(session: requests.Session, index: int) -> Outcome:
        current = token["value"] or fresh_token("")
        answer = session.get(url, headers={"Authorization": f"Bearer {current}"}, timeout=60)
        if answer.status_code == 401:
            current = fresh_token(current)
            answer = session.get(url, headers={"Authorization": f"Bearer {current}"}, timeout=60)
        return Outcome("direct", answer.status_code, 0.0, calls=1)

    return run_load(
        work,
        lambda session: None,
        lambda index: "direct",
        total=args.requests,
        clients=args.clients,
        time_limit=args.time_limit,
    )


# --- pocclient's console API -------------------------------------------------------------------


def log_in(app: Served) -> dict[str, str]:
    """Headers of a logged-in browser behind a TLS proxy (the cookies are Secure)."""
    origin = app.url.replace("http:", "https:")
    proxy = {"X-Forwarded-Proto": "https", "Origin": origin}
    page = requests.get(f"{app.url}/accounts/login/", headers=proxy, timeout=30)
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = requests.post(
        f"{app.url}/accounts/login/",
        data={
            "username": "load",
            "password": PASSWORD,
            "next": "/",
            "csrfmiddlewaretoken": form_token,
        },
        headers={**proxy, "Cookie": f"csrftoken={page.cookies['csrftoken']}"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[:500]
    cookies = {"csrftoken": page.cookies["csrftoken"], **answer.cookies.get_dict()}
    return {
        **proxy,
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRFToken": cookies["csrftoken"],
    }


def console_load(app: Served, args: argparse.Namespace) -> Run:
    headers = log_in(app)

    def kind_of(index: int) -> str:
        return {0: "token_refresh", 5: "batch"}.get(index % 10, "send")

    def work(session: requests.Session, index: int) -> Outcome:
        if index % 10 == 0:
            answer = session.post(f"{app.url}/_token_refresh", json={}, timeout=60)
            return Outcome("token_refresh", answer.status_code, 0.0)
        if index % 10 == 5:
            body = {"requests": [CALL] * BATCH_SIZE, "concurrency": BATCH_SIZE}
            with session.post(f"{app.url}/api/batch", json=body, timeout=60, stream=True) as answer:
                lines = [json.loads(line) for line in answer.iter_lines() if line]
            items = [line for line in lines if "summary" not in line]
            errors = ",".join(sorted({i["error"]["code"] for i in items if i["error"]}))
            return Outcome("batch", answer.status_code, 0.0, calls=len(items), error=errors)
        answer = session.post(f"{app.url}/api/send", json=CALL, timeout=60)
        made = answer.status_code in (200, 502, 504)  # answered for a call it made
        return Outcome("send", answer.status_code, 0.0, calls=int(made))

    return run_load(
        work,
        lambda session: session.headers.update(headers),
        kind_of,
        total=args.requests,
        clients=args.clients,
        time_limit=args.time_limit,
    )


def send_load(app: Served, headers: dict[str, str], path: str, total: int, clients: int) -> Run:
    """``total`` POSTs of one call to ``path`` (``/api/send``, or the bare view)."""

    def work(session: requests.Session, index: int) -> Outcome:
        answer = session.post(f"{app.url}{path}", json=CALL, timeout=60)
        return Outcome(path, answer.status_code, 0.0)

    return run_load(
        work,
        lambda session: session.headers.update(headers),
        lambda index: path,
        total=total,
        clients=clients,
        time_limit=600,
    )


def send_against_bare(app: Served, args: argparse.Namespace) -> None:
    """``POST /api/send`` against the bare view (bench/urls.py), in alternating rounds."""
    headers = log_in(app)
    rounds: dict[str, list[Run]] = {"/api/send": [], "/bench/bare-send": []}
    send_load(app, headers, "/api/send", 500, args.send_clients)  # warm up both
    send_load(app, headers, "/bench/bare-send", 500, args.send_clients)
    for _ in range(args.rounds):
        for path, runs in rounds.items():
            runs.append(send_load(app, headers, path, args.send_requests, args.send_clients))
    print(
        f"\n== /api/send against the bare view: {args.rounds} alternating rounds of "
        f"{args.send_requests} requests from {args.send_clients} clients, medians of rounds"
    )
    figures = {}
    for path, runs in rounds.items():
        rate = statistics.median(len(r.outcomes) / r.seconds for r in runs)
        p50 = statistics.median(percentile(r.latencies(), 50) for r in runs) * 1000
        p99 = statistics.median(percentile(r.latencies(), 99) for r in runs) * 1000
        failed = sum(o.status != 200 for r in runs for o in r.outcomes)
        figures[path] = rate
        print(
            f"   {path:<18} requests/s {rate:7,.0f}   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
            f"   p99/p50 {p99 / p50:4.1f}   not 200: {failed}"
        )
    print(
        f"   /api/send at x{figures['/api/send'] / figures['/bench/bare-send']:.2f} the bare "
        "view's requests/s (aim: 0.8 or better, p99 under 3x p50)"
    )


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def sandbox_grants(sandbox: Served) -> int:
    """Tokens the sandbox has issued (counted in its database, so across its processes)."""
    return requests.get(f"{sandbox.url}/sandbox/stats", timeout=30).json()["grants"]["total"]


def audit(app: Served, run: Run) -> dict:
    """What pocclient's database and log say about the run."""
    with sqlite3.connect(app.database) as db:
        [exchanges] = db.execute("SELECT count(*) FROM api_client_exchange WHERE kind = 'api'")
        grants = [
            parse_time(created)
            for (created,) in db.execute(
                "SELECT created_at FROM api_client_exchange "
                "WHERE kind = 'token' AND status = 200 ORDER BY created_at"
            )
        ]
        [(obtained, expires)] = db.execute("SELECT obtained_at, expires_at FROM api_client_token")
    lifetime = parse_time(expires) - parse_time(obtained)
    due_after = min(60, lifetime / 2)  # POC_API_TOKEN_LEEWAY (60), capped at half the life
    gaps = [later - earlier for earlier, later in itertools.pairwise(grants)]
    # A token fell due while the load went on: it should have been replaced once, right then.
    # "While": until the last answer, since requests sent before the last one was sent can
    # still reach the token check after it.
    expiries = sum(1 for granted in grants if granted + due_after < run.last_answer)
    log = app.log.read_text(errors="replace")
    return {
        "exchanges": exchanges[0] if isinstance(exchanges, tuple) else exchanges,
        "grants": len(grants),
        "refreshes": len(grants) - 1,
        "expiries": expiries,
        "due_after": due_after,
        "min_gap": min(gaps) if gaps else math.nan,
        "max_gap": max(gaps) if gaps else math.nan,
        "locked": log.count("database is locked"),
        "programming_errors": log.count("ProgrammingError"),
        "tracebacks": log.count("Traceback"),
        "pool_full": log.count("Connection pool is full"),
    }


def report(name: str, run: Run, baseline: Run | None, audit_: dict | None) -> None:
    done = len(run.outcomes)
    rate = done / run.seconds
    ordered = run.latencies()
    server_errors = sum(1 for o in run.outcomes if o.status >= 500)
    unanswered = sum(1 for o in run.outcomes if o.status == 0)
    print(f"\n== {name}: {done} requests in {run.seconds:.1f} s")
    print(
        f"   requests/s {rate:,.0f}   p50 {percentile(ordered, 50) * 1000:.1f} ms   "
        f"p99 {percentile(ordered, 99) * 1000:.1f} ms   5xx {server_errors}   "
        f"no answer (connection refused or reset) {unanswered}"
    )
    if baseline is not None:
        base_rate = len(baseline.outcomes) / baseline.seconds
        base_p50 = percentile(baseline.latencies(), 50)
        print(
            f"   vs direct: requests/s x{rate / base_rate:.2f}, "
            f"p50 x{percentile(ordered, 50) / base_p50:.2f}"
        )
    kinds = sorted({o.kind for o in run.outcomes})
    for kind in kinds:
        of_kind = run.latencies(kind)
        statuses: dict[int, int] = {}
        for outcome in run.outcomes:
            if outcome.kind == kind:
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        p50, p99 = percentile(of_kind, 50) * 1000, percentile(of_kind, 99) * 1000
        print(
            f"   {kind:<14}{len(of_kind):>7}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"statuses {dict(sorted(statuses.items()))}"
        )
    errors = {o.error for o in run.outcomes if o.error}
    if errors:
        print(f"   errors seen: {sorted(errors)}")
    if audit_ is None:
        return
    calls = sum(o.calls for o in run.outcomes)
    one_per_expiry = audit_["refreshes"] == audit_["expiries"] == audit_["sandbox_grants"] - 1 and (
        audit_["refreshes"] == 0 or audit_["min_gap"] >= audit_["due_after"] - 0.5
    )
    print(
        f"   API calls answered for {calls}, exchanges recorded {audit_['exchanges']}: "
        f"{'match' if calls == audit_['exchanges'] else 'MISMATCH'}"
    )
    apart = (
        f"grants {audit_['min_gap']:.2f}-{audit_['max_gap']:.2f} s apart"
        if audit_["refreshes"]
        else "no refresh was due"
    )
    print(
        f"   token grants {audit_['grants']} (sandbox counted {audit_['sandbox_grants']}; "
        f"1 + {audit_['refreshes']} refreshes), "
        f"expiries during the run {audit_['expiries']}; due every {audit_['due_after']:.1f} s, "
        f"{apart}: {'one grant per expiry' if one_per_expiry else 'NOT one grant per expiry'}"
    )
    print(
        f"   log lines: 'database is locked' {audit_['locked']}, 'ProgrammingError' "
        f"{audit_['programming_errors']}, tracebacks {audit_['tracebacks']}, "
        f"'Connection pool is full' {audit_['pool_full']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per server")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--time-limit", type=float, default=600, help="seconds, per server")
    parser.add_argument("--token-lifetime", type=int, default=10, help="seconds")
    parser.add_argument("--servers", default="gunicorn,runserver")
    parser.add_argument("--rounds", type=int, default=3, help="of /api/send against the bare view")
    parser.add_argument("--send-requests", type=int, default=4000, help="per round and side")
    parser.add_argument("--send-clients", type=int, default=32)
    args = parser.parse_args()
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]

    print(
        f"{args.clients} clients, up to {args.requests} requests or {args.time_limit:g} s per "
        f"server; sandbox latency {float(DELAY) * 1000:g} ms, tokens live "
        f"{args.token_lifetime} s"
    )
    with sandbox_server(
        workers=2, threads=32, POC_SANDBOX_TOKEN_LIFETIME=str(args.token_lifetime)
    ) as sandbox:
        baseline = direct_load(sandbox, args)
        report("direct to the sandbox (baseline)", baseline, None, None)
        for name in servers:
            with project_server(
                runserver=name == "runserver",
                static=True,
                workers=2,
                threads=16,
                POC_SANDBOX="0",
                DJANGO_SETTINGS_MODULE="bench.settings",  # the bare view beside the console
                POC_API_BASE_URL=f"{sandbox.url}/sandbox/api/",
                POC_API_TOKEN_URL=f"{sandbox.url}/sandbox/oauth/token?delay={DELAY}",
                DJANGO_LOG_LEVEL="INFO",
            ) as app:
                app.manage(
                    "createsuperuser",
                    "--no-input",
                    "--username",
                    "load",
                    "--email",
                    "",
                    DJANGO_SUPERUSER_PASSWORD=PASSWORD,
                )
                grants_before = sandbox_grants(sandbox)
                run = console_load(app, args)
                time.sleep(0.5)  # let the last log lines reach the file
                found = audit(app, run)
                found["sandbox_grants"] = sandbox_grants(sandbox) - grants_before
                report(f"pocclient under {name}", run, baseline, found)
                if name == "gunicorn":
                    send_against_bare(app, args)


if __name__ == "__main__":
    main()

"""Per-call cost of api_client beside raw requests, Authlib and httpx, on loopback.

Each sends sequential GETs with a bearer token to the same endpoint, in rounds that alternate
between them so that machine noise hits all alike:

- raw: one ``requests.Session``, the token in a header: the least a Python client does;
- authlib: Authlib's ``OAuth2Session`` (requests underneath), the token fetched once with the
  client-credentials grant, as its users write it;
- httpx: one ``httpx.Client``, the token in a header;
- pocclient: ``ApiClient.get``, doing everything it does in production: path and header
  checks, the token from its cache, the retry policy and deadline, redaction, the log line
  (formatted off the caller's thread, then dropped), and the exchange written ahead (pending,
  committed before the request leaves) and completed after, by the ledger's writer thread;
- and, to show where the rest goes, pocclient with its ledger made a no-op (a diagnosis,
  not a way to run it).

Two endpoints, because the ratio depends on how fast the server is:
- stub: bench/stub_api.py in its own process, answering at once; the worst case for a ratio;
- sandbox: the sandbox's /api/whoami served by gunicorn (Django, token signature checked).

``DATABASE_URL=postgres://...`` records into PostgreSQL instead of a SQLite file.

    .venv/bin/python bench/client_overhead.py [--calls 2000] [--rounds 7]
"""

import argparse
from collections.abc import Callable
from contextlib import ExitStack, contextmanager

from common import median, per_call_seconds, sandbox_server, setup_django, stub_api


@contextmanager
def ledger_off():
    """Diagnosis only: calls whose exchanges are neither written ahead nor completed."""
    from api_client.ledger import LEDGER

    saved = LEDGER.open, LEDGER.close
    LEDGER.open = lambda exchange: 0
    LEDGER.close = lambda exchange, fields, wait: None
    try:
        yield
    finally:
        LEDGER.open, LEDGER.close = saved


def runners(client, url: str, token_url: str) -> dict[str, Callable[[int], None]]:
    import httpx
    import requests
    from authlib.integrations.requests_client import OAuth2Session

    token = client.tokens.get_token()
    headers = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    plain = httpx.Client(timeout=30)
    oauth = OAuth2Session(
        client.config.CLIENT_ID, client.config.CLIENT_SECRET, token_endpoint=token_url
    )
    oauth.fetch_token(grant_type="client_credentials")

    def raw(n: int) -> None:
        for _ in range(n):
            session.get(url, headers=headers, timeout=(3.05, 30)).raise_for_status()

    def authlib(n: int) -> None:
        for _ in range(n):
            oauth.get(url, timeout=(3.05, 30)).raise_for_status()

    def through_httpx(n: int) -> None:
        for _ in range(n):
            plain.get(url, headers=headers).raise_for_status()

    def pocclient(n: int) -> None:
        for _ in range(n):
            client.get("whoami").raise_for_status()

    def no_ledger(n: int) -> None:
        with ledger_off():
            pocclient(n)

    return {
        "raw": raw,
        "authlib": authlib,
        "httpx": through_httpx,
        "pocclient": pocclient,
        "no ledger": no_ledger,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with ExitStack() as stack:
        stub = stack.enter_context(stub_api())
        sandbox = stack.enter_context(sandbox_server(threads=4)).url
        setup_django()
        from django.db import connection

        from api_client.client import ApiClient
        from api_client.conf import api_settings
        from api_client.ledger import LEDGER
        from api_client.models import Exchange

        print(
            f"{args.calls} sequential GETs x {args.rounds} rounds, medians per call, "
            f"exchanges in {connection.vendor}"
        )
        names = ("raw", "authlib", "httpx", "pocclient", "no ledger")
        print(f"{'endpoint':<9}" + "".join(f"{name + ' us':>14}" for name in names))
        ratios = {}
        for name, root, token_path in (
            ("stub", stub, "/token"),
            ("sandbox", sandbox, "/sandbox/oauth/token"),
        ):
            base = f"{root}/api/" if name == "stub" else f"{root}/sandbox/api/"
            config = api_settings().with_overrides(BASE_URL=base, TOKEN_URL=root + token_path)
            client = ApiClient(config)
            run = runners(client, base + "whoami", root + token_path)
            for each in run.values():
                each(200)  # warm up connections, caches, the database file
            LEDGER.flush()
            before = Exchange.objects.filter(kind=Exchange.Kind.API).count()
            times: dict[str, list[float]] = {key: [] for key in run}
            for _ in range(args.rounds):
                for key, each in run.items():
                    times[key] += per_call_seconds(each, args.calls, 1)
            LEDGER.flush()
            recorded = Exchange.objects.filter(kind=Exchange.Kind.API, state="answered").count()
            assert recorded - before == args.calls * args.rounds, recorded - before
            medians = {key: median(values) for key, values in times.items()}
            print(f"{name:<9}" + "".join(f"{medians[key] * 1e6:>14.1f}" for key in names))
            ratios[name] = {key: medians[key] / medians["raw"] for key in names}
        print("ratio to raw")
        for name, row in ratios.items():
            print(f"{name:<9}" + "".join(f"{row[key]:>14.2f}" for key in names))
        print(
            "aim: pocclient within 1.3x raw on SQLite, 1.5x on PostgreSQL; every call "
            "recorded, answered (checked)"
        )


if __name__ == "__main__":
    main()

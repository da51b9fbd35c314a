"""Per-call overhead of api_client over a raw requests.Session, on loopback.

Both send sequential GETs to the same endpoint, in rounds that alternate between the two so
that machine noise hits both alike. api_client does everything it does in production: path
and header checks, the token from its cache, urllib3's retry machinery, redaction, the log
line (formatted, then dropped), and one Exchange INSERT into a SQLite file in WAL mode.

Two endpoints, because the ratio depends on how fast the server is:
- stub: bench/stub_api.py in its own process, answering at once. The server's time is as
  small as it gets, so this ratio is the worst case.
- sandbox: the sandbox's /api/whoami served by gunicorn (Django, token signature checked):
  a realistic fast API endpoint.

    .venv/bin/python bench/client_overhead.py [--calls 2000] [--rounds 7]
"""

import argparse
from contextlib import ExitStack, contextmanager

from common import median, per_call_seconds, sandbox_server, setup_django, stub_api


@contextmanager
def recording_off():
    """Diagnosis only: the client's calls without building or storing their exchange, to show
    in the same run what recording costs and what the rest of the call path does."""
    import api_client.client as module

    saved = module.exchange_for, module.store
    module.exchange_for = lambda call, outcome, **kwargs: None
    module.store = lambda exchange: None
    try:
        yield
    finally:
        module.exchange_for, module.store = saved


def measure(client, session, url: str, calls: int, rounds: int) -> tuple[float, float, float]:
    """Median seconds per call: (raw requests.Session, api_client, api_client recording off)."""
    headers = {"Authorization": f"Bearer {client.tokens.get_token()}"}

    def raw(n: int) -> None:
        for _ in range(n):
            session.get(url, headers=headers, timeout=(3.05, 30)).raise_for_status()

    def through_client(n: int) -> None:
        for _ in range(n):
            client.get("whoami").raise_for_status()

    raw(200), through_client(200)  # warm up connections, caches, the database file
    raw_times, client_times, bare_times = [], [], []
    for _ in range(rounds):
        raw_times += per_call_seconds(raw, calls, 1)
        client_times += per_call_seconds(through_client, calls, 1)
        with recording_off():
            bare_times += per_call_seconds(through_client, calls, 1)
    return median(raw_times), median(client_times), median(bare_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with ExitStack() as stack:
        stub = stack.enter_context(stub_api())
        sandbox = stack.enter_context(sandbox_server(threads=4)).url
        setup_django()
        import requests

        from api_client.client import ApiClient
        from api_client.conf import api_settings
        from api_client.models import Exchange

        print(f"{args.calls} sequential GETs x {args.rounds} rounds, medians per call")
        print(
            f"{'endpoint':<9}{'raw us':>10}{'client us':>11}{'overhead us':>13}{'ratio':>8}"
            f"{'recording off us':>18}{'ratio':>8}"
        )
        for name, root, token_path in (
            ("stub", stub, "/token"),
            ("sandbox", sandbox, "/sandbox/oauth/token"),
        ):
            base = f"{root}/api/" if name == "stub" else f"{root}/sandbox/api/"
            config = api_settings().with_overrides(BASE_URL=base, TOKEN_URL=root + token_path)
            client, session = ApiClient(config), requests.Session()
            before = Exchange.objects.filter(kind=Exchange.Kind.API).count()
            raw_s, client_s, bare_s = measure(
                client, session, base + "whoami", args.calls, args.rounds
            )
            recorded = Exchange.objects.filter(kind=Exchange.Kind.API).count() - before
            assert recorded == args.calls * args.rounds + 200, recorded
            print(
                f"{name:<9}{raw_s * 1e6:>10.1f}{client_s * 1e6:>11.1f}"
                f"{(client_s - raw_s) * 1e6:>13.1f}{client_s / raw_s:>8.2f}"
                f"{bare_s * 1e6:>18.1f}{bare_s / raw_s:>8.2f}"
            )
        print("aim: overhead < 1000 us per call, ratio < 1.5; every call recorded (checked)")


if __name__ == "__main__":
    main()

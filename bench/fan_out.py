"""Fan-out: many slow calls at once through ``request_many``, against raw requests and the ideal.

256 GETs to an endpoint that answers after 50 ms, 32 at a time, three ways, in rounds that
alternate so that machine noise hits all alike:

- ideal: ceil(256 / 32) x 50 ms, the time the server alone needs;
- raw: one ``requests.Session`` in a ``concurrent.futures.ThreadPoolExecutor`` of 32 threads,
  no token, no database: the least a Python client can do;
- client: ``ApiClient.request_many(..., concurrency=32)``, doing everything it does in
  production: validation, the token from its cache, retries, redaction, and one ``Exchange``
  INSERT per call into a SQLite file in WAL mode, from 32 threads that open and close their
  own connections;
- and, to show where the difference goes, the client once more with the INSERT replaced by
  a no-op (a diagnosis, not a way to run it).

The endpoint is bench/stub_api.py in its own process (``?delay=0.05``).

    .venv/bin/python bench/fan_out.py [--calls 256] [--concurrency 32] [--delay 0.05] [--rounds 7]
"""

import argparse
import math
import time
from concurrent.futures import ThreadPoolExecutor

from common import median, setup_django, stub_api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.05, help="server latency, seconds")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with stub_api() as root:
        setup_django()
        import requests
        from requests.adapters import HTTPAdapter

        from api_client.client import ApiClient
        from api_client.conf import api_settings
        from api_client.models import Exchange

        config = api_settings().with_overrides(
            BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token", MAX_WORKERS=args.concurrency
        )
        client = ApiClient(config)
        calls = [
            {"method": "GET", "path": "slow", "query": {"delay": args.delay}}
            for _ in range(args.calls)
        ]
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=args.concurrency))
        url = f"{root}/api/slow?delay={args.delay}"

        def raw() -> None:
            def one(_: int) -> None:
                session.get(url, timeout=(3.05, 30)).raise_for_status()

            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                list(pool.map(one, range(args.calls)))

        def through_client() -> None:
            results = client.request_many(calls, concurrency=args.concurrency)
            assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]

        def without_the_insert() -> None:
            """Diagnosis only: the client with its exchange INSERTs made no-ops."""

            def skip(exchanges, *args, **kwargs):
                for exchange in exchanges:
                    exchange.pk = 0
                return exchanges

            # Shadow the methods on this manager: record() for single calls, bulk_create() for
            # the batch writer.
            Exchange.objects.record = lambda exchange: 0
            Exchange.objects.bulk_create = skip
            try:
                through_client()
            finally:
                del Exchange.objects.record
                del Exchange.objects.bulk_create

        def seconds(run) -> float:
            started = time.perf_counter()
            run()
            return time.perf_counter() - started

        raw(), through_client()  # warm up: connections, token, database file
        before = Exchange.objects.filter(kind=Exchange.Kind.API).count()
        raw_times, client_times, bare_times = [], [], []
        for _ in range(args.rounds):
            raw_times.append(seconds(raw))
            client_times.append(seconds(through_client))
            bare_times.append(seconds(without_the_insert))
        recorded = Exchange.objects.filter(kind=Exchange.Kind.API).count() - before
        assert recorded == args.calls * args.rounds, recorded

    ideal = math.ceil(args.calls / args.concurrency) * args.delay
    raw_s, client_s, bare_s = median(raw_times), median(client_times), median(bare_times)
    print(
        f"{args.calls} GETs answering after {args.delay * 1000:g} ms, concurrency "
        f"{args.concurrency}, median of {args.rounds} rounds"
    )
    print(f"{'':<30}{'seconds':>9}{'x ideal':>9}")
    print(f"{'ideal':<30}{ideal:>9.3f}{1:>9.2f}")
    print(f"{'raw':<30}{raw_s:>9.3f}{raw_s / ideal:>9.2f}")
    print(f"{'client':<30}{client_s:>9.3f}{client_s / ideal:>9.2f}")
    print(f"{'client, no INSERT (diagnosis)':<30}{bare_s:>9.3f}{bare_s / ideal:>9.2f}")
    print(f"client / raw: {client_s / raw_s:.3f}   (without the INSERT: {bare_s / raw_s:.3f})")
    print(f"every call recorded: {recorded} exchanges (checked)")
    print("aim: client within 1.15x of ideal and 1.05x of raw")


if __name__ == "__main__":
    main()

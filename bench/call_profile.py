"""Where a call's time goes: cProfile over sequential GETs, in microseconds per call.

The client sends ``--calls`` GETs to bench/stub_api.py (answering at once) with everything it
does in production; the profile's functions are then listed by their own time (``tottime``)
per call, with the cumulative time of the client's main steps, so that a change to the
per-call path shows up as microseconds gained or lost. cProfile adds its own cost to every
function call, so compare these numbers with each other, not with bench/client_overhead.py.

    .venv/bin/python bench/call_profile.py [--calls 5000] [--top 25]
"""

import argparse
import cProfile
import pstats

from common import setup_django, stub_api

# The steps of a call, by the name of the function that does each; shown cumulatively.
STEPS = (
    "prepare",
    "get_token",
    "send",
    "urlopen",
    "exchange_for",
    "redact_headers",
    "redact_body",
    "store",
    "record",
    "info",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    with stub_api() as root:
        setup_django()
        from api_client.client import ApiClient
        from api_client.conf import api_settings

        config = api_settings().with_overrides(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token")
        client = ApiClient(config)
        for _ in range(200):  # warm up: connection, token, database file
            client.get("whoami")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls):
            client.get("whoami")
        profile.disable()

    stats = pstats.Stats(profile)
    per_call = 1e6 / args.calls
    rows = []  # (own us, total us, calls per call, where)
    for (filename, line, name), (_, calls, own, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{'/'.join(filename.rsplit('/', 2)[-2:])}:{line}({name})"
        rows.append((own * per_call, total * per_call, calls / args.calls, where))
    print(f"{args.calls} GETs against the stub, cProfile; microseconds per call")
    print(f"{'own us':>8}{'total us':>10}{'calls/call':>12}  function")
    for own, total, calls, where in sorted(rows, reverse=True)[: args.top]:
        print(f"{own:>8.1f}{total:>10.1f}{calls:>12.1f}  {where}")
    print("\nsteps (cumulative, us per call):")
    ours = ("api_client/", "urllib3/", "logging/")
    for step in STEPS:
        for _, total, _, where in rows:
            if where.endswith(f"({step})") and where.startswith(ours):
                print(f"  {step:<14}{total:>8.1f}   {where}")
    print(f"\nall profiled time: {sum(row[0] for row in rows):.1f} us per call")


if __name__ == "__main__":
    main()

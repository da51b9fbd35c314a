"""Run as a separate OS process by the single-flight test.

``python -m tests.helpers.token_race THREADS START_AT [CONNECTION]``: waits until the
wall-clock time START_AT, then THREADS threads ask for a token (of CONNECTION, default
``default``) at the same moment. Prints the tokens they
got (as JSON) on stdout. Settings come from the environment, like any pocclient process.
"""

import json
import os
import sys
import threading
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocclient.settings")
django.setup()

from django.db import connection  # noqa: E402

from api_client.client import ApiClient, get_client  # noqa: E402


def main() -> None:
    threads, start_at = int(sys.argv[1]), float(sys.argv[2])
    client = get_client(sys.argv[3]) if len(sys.argv) > 3 else ApiClient()
    barrier = threading.Barrier(threads)
    results: list[str] = []

    def race() -> None:
        barrier.wait()
        try:
            results.append(client.tokens.get_token())
        except Exception as exc:  # reported to the parent, which fails the test
            results.append(f"error: {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    workers = [threading.Thread(target=race) for _ in range(threads)]
    time.sleep(max(0.0, start_at - time.time()))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()

"""Run as a separate OS process by the database-contention tests.

``python -m tests.helpers.hold_lock``: takes the write lock of the database in DATABASE_URL
the way another busy process would, prints ``locked``, and holds it until its standard input
closes. On SQLite that is the whole database (an IMMEDIATE transaction takes the write lock
as it begins); on PostgreSQL, the exchange and token tables, locked against writers (readers
go on, as with SQLite's WAL).
"""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocclient.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402


def main() -> None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("LOCK TABLE api_client_exchange, api_client_token IN EXCLUSIVE MODE")
            else:
                cursor.execute("PRAGMA main.journal_mode")  # BEGIN IMMEDIATE has run: locked
        sys.stdout.write("locked\n")
        sys.stdout.flush()
        sys.stdin.read()


if __name__ == "__main__":
    main()

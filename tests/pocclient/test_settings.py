"""Settings: the SQLite tuning is live on real connections; production refuses unsafe starts."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from api_client import checks

ROOT = Path(__file__).resolve().parents[2]
sqlite_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
    reason="SQLite tuning applies only when DATABASE_URL is SQLite",
)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POC_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "pocclient.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def pragma(name: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_sqlite_pragmas_read_back_from_a_live_connection():
    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 1  # NORMAL
    assert pragma("busy_timeout") == int(settings.SQLITE_BUSY_TIMEOUT * 1000)
    assert pragma("mmap_size") == 0  # never: see the WAL-reset bug
    assert pragma("foreign_keys") == 1
    assert pragma("journal_size_limit") == 67108864
    assert connection.transaction_mode == "IMMEDIATE"
    assert not settings.DATABASES["default"]["ATOMIC_REQUESTS"]


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_every_thread_gets_its_own_tuned_connection():
    from django.db import connections

    seen = {}

    def read() -> None:
        seen["journal_mode"] = pragma("journal_mode")
        seen["connection"] = id(connections["default"].connection)
        connections.close_all()

    pragma("journal_mode")
    thread = threading.Thread(target=read)
    thread.start()
    thread.join()

    assert seen["journal_mode"] == "wal"
    assert seen["connection"] != id(connection.connection)


def test_test_database_is_a_file_not_shared_memory():
    if connection.vendor == "sqlite":
        assert not connection.is_in_memory_db()


def test_production_without_a_secret_key_refuses_to_start():
    result = run_python("import django; django.setup()", DJANGO_DEBUG="0")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in result.stderr


def test_production_with_a_secret_key_starts():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.POC_SANDBOX)",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 50,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG must be one of"),
        ("POC_API_MAX_WORKERS", "lots", "POC_API_MAX_WORKERS must be a int"),
        ("POC_API_MAX_WORKERS", "0", "POC_API_MAX_WORKERS must be at least 1"),
        ("POC_API_READ_TIMEOUT", "-1", "POC_API_READ_TIMEOUT must be at least"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL is not a supported database URL"),
    ],
)
def test_a_bad_environment_value_names_the_variable(name, value, message):
    result = run_python("import django; django.setup()", **{name: value})

    assert result.returncode != 0
    assert message in result.stderr


def test_bad_api_settings_are_reported_by_a_system_check(settings):
    settings.POC_API = {**settings.POC_API, "BASE_URL": "ftp://x", "CLIENT_AUTH": "magic"}

    errors = checks.check_api_settings(None)

    assert [e.id for e in errors] == ["api_client.E001", "api_client.E001"]
    assert "POC_API_BASE_URL must be an absolute http(s) URL." in errors[0].msg


def test_unknown_api_setting_keys_are_reported(settings):
    settings.POC_API = {**settings.POC_API, "BASE_ULR": "x"}

    errors = checks.check_api_settings(None)

    assert [e.id for e in errors] == ["api_client.E002"]


def test_old_sqlite_gets_a_warning_with_a_hint(monkeypatch):
    monkeypatch.setattr(checks, "uses_sqlite", lambda: True)
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 40, 1))
    monkeypatch.setattr(checks.sqlite3, "sqlite_version", "3.40.1")

    [warning] = checks.check_sqlite_version(None)

    assert warning.id == "api_client.W001"
    assert "3.40.1" in warning.msg
    assert "PostgreSQL" in warning.hint

    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 51, 3))
    assert checks.check_sqlite_version(None) == []


def test_postgresql_gets_no_sqlite_warning(monkeypatch):
    monkeypatch.setattr(checks, "uses_sqlite", lambda: False)
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 40, 1))

    assert checks.check_sqlite_version(None) == []

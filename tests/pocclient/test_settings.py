"""Settings: the SQLite tuning is live on real connections; production refuses unsafe starts."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.utils import ConnectionHandler

from api_client import checks

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def sqlite_connections(tmp_path, django_db_blocker):
    """Connections configured exactly like the default SQLite database, on a fresh file.

    Built from the settings even when the suite runs on PostgreSQL, so the SQLite tuning is
    checked in every run.
    """
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": settings.SQLITE_ENGINE,
                "NAME": str(tmp_path / "tuned.sqlite3"),
                "OPTIONS": settings.SQLITE_OPTIONS,
            }
        }
    )
    with django_db_blocker.unblock():  # not the test database: a file of our own
        yield handler
        handler.close_all()


def pragma(conn, name: str) -> object:
    with conn.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def test_sqlite_pragmas_read_back_from_a_live_connection(sqlite_connections):
    conn = sqlite_connections["default"]

    assert pragma(conn, "journal_mode") == "wal"
    assert pragma(conn, "synchronous") == 1  # NORMAL
    assert pragma(conn, "busy_timeout") == int(settings.SQLITE_BUSY_TIMEOUT * 1000)
    assert pragma(conn, "mmap_size") == 0  # never: see the WAL-reset bug
    assert pragma(conn, "foreign_keys") == 1
    assert pragma(conn, "journal_size_limit") == 67108864
    assert pragma(conn, "cache_size") == -20000
    assert conn.transaction_mode == "IMMEDIATE"
    assert not conn.settings_dict["ATOMIC_REQUESTS"]


def test_every_thread_gets_its_own_tuned_connection(sqlite_connections):
    seen = {}

    def read() -> None:
        conn = sqlite_connections["default"]
        seen["busy_timeout"] = pragma(conn, "busy_timeout")
        seen["connection"] = id(conn.connection)
        conn.close()

    main = sqlite_connections["default"]
    pragma(main, "journal_mode")
    thread = threading.Thread(target=read)
    thread.start()
    thread.join()

    assert seen["busy_timeout"] == int(settings.SQLITE_BUSY_TIMEOUT * 1000)
    assert seen["connection"] != id(main.connection)


def test_the_default_database_uses_the_tuned_sqlite_options_when_it_is_sqlite():
    default = settings.DATABASES["default"]
    if default["ENGINE"] == settings.SQLITE_ENGINE:
        assert default["OPTIONS"] == settings.SQLITE_OPTIONS
        assert not connection.is_in_memory_db()  # tests run on a file, as production does
    else:
        assert default["ENGINE"] == "django.db.backends.postgresql"
        assert default["CONN_HEALTH_CHECKS"]
    assert not default["ATOMIC_REQUESTS"]


@pytest.mark.django_db
def test_a_writer_waits_for_a_lock_at_most_20_seconds_on_either_database():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20_000  # milliseconds
        else:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "20s"


def test_postgresql_lock_timeout_comes_from_the_environment_and_keeps_url_options():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS']['options'])",
        DATABASE_URL="postgres://u@127.0.0.1/db?options=-c%20search_path%3Dx",
        POC_PG_LOCK_TIMEOUT="1.5",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-c search_path=x -c lock_timeout=1500"


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
        ("POC_API_MAX_WORKERS", "lots", "POC_API_MAX_WORKERS must be an integer"),
        ("POC_API_MAX_WORKERS", "0", "POC_API_MAX_WORKERS must be at least 1"),
        ("POC_API_READ_TIMEOUT", "-1", "POC_API_READ_TIMEOUT must be at least"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL is not a supported database URL"),
        ("DJANGO_LOG_LEVEL", "LOUD", "DJANGO_LOG_LEVEL must be one of DEBUG, INFO, WARNING"),
    ],
)
def test_a_bad_environment_value_names_the_variable(name, value, message):
    result = run_python("import django; django.setup()", **{name: value})

    assert result.returncode != 0
    assert message in result.stderr


BAD_VALUES = [
    ("POC_API_MAX_WORKERS", "lots", "POC_API_MAX_WORKERS must be an integer; got 'lots'."),
    (
        "DJANGO_DEBUG",
        "maybe",
        "DJANGO_DEBUG must be one of 1/0, true/false, yes/no, on/off; got 'maybe'.",
    ),
    ("POC_API_READ_TIMEOUT", "-1", "POC_API_READ_TIMEOUT must be at least 0.01; got '-1'."),
    (
        "DJANGO_LOG_LEVEL",
        "LOUD",
        "DJANGO_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got 'LOUD'.",
    ),
]


def run_manage(*argv: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POC_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES)
@pytest.mark.parametrize(
    "argv", [["check"], ["refresh_token", "--help"], ["api_request", "GET", "whoami"], ["help"]]
)
def test_a_bad_environment_value_stops_manage_py_in_one_line_with_status_2(
    argv, name, value, message
):
    result = run_manage(*argv, **{name: value})

    assert result.returncode == 2
    assert result.stderr == f"ImproperlyConfigured: {message}\n"
    assert result.stdout == ""


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES)
def test_a_bad_environment_value_stops_the_wsgi_application_in_one_line_with_status_2(
    name, value, message
):
    result = run_python("import pocclient.wsgi", **{name: value})

    assert result.returncode == 2
    assert result.stderr == f"ImproperlyConfigured: {message}\n"


def test_production_without_a_secret_key_is_one_line_too():
    result = run_manage("check", DJANGO_DEBUG="0")

    assert result.returncode == 2
    assert result.stderr.startswith("ImproperlyConfigured: DJANGO_SECRET_KEY is required")
    assert result.stderr.count("\n") == 1


def test_the_log_level_is_read_without_regard_to_case():
    result = run_python(
        "import django; django.setup(); import logging; from django.conf import settings; "
        "print(settings.LOG_LEVEL, logging.getLevelName(logging.getLogger().level))",
        DJANGO_LOG_LEVEL=" warning ",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["WARNING", "WARNING"]


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

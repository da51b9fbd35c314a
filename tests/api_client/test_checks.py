"""The SQLite warning (api_client.W001) is shown where a deployment is decided (`check --deploy`,
`make run`, the admin index), and not on the stderr of every command a cron job runs."""

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

from api_client import checks

ROOT = Path(__file__).resolve().parents[2]
W001 = "api_client.W001"

old_sqlite = pytest.mark.skipif(
    sqlite3.sqlite_version_info >= checks.SQLITE_WAL_RESET_FIXED,
    reason=f"this Python's SQLite {sqlite3.sqlite_version} has no WAL-reset bug to warn about",
)


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory) -> dict[str, str]:
    """The environment of a manage.py on a migrated SQLite file, with an API nobody serves."""
    database = tmp_path_factory.mktemp("checks") / "db.sqlite3"
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "POC_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        POC_API_BASE_URL=f"{nowhere}/api/",
        POC_API_TOKEN_URL=f"{nowhere}/token",
        POC_API_RETRIES="0",
        DJANGO_LOG_LEVEL="WARNING",
    )
    migrated = manage("migrate", "--no-input", env=env)
    assert migrated.returncode == 0, migrated.stderr
    return env


def manage(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@old_sqlite
@pytest.mark.parametrize(
    "argv",
    [
        ["purge_exchanges", "--older-than", "1", "--dry-run"],
        ["ensure_admin"],
        ["api_request", "GET", "whoami"],
        ["send_batch", "/dev/null"],
        ["refresh_token"],
        ["refresh_token", "--help"],
        ["check"],
    ],
)
def test_commands_do_not_print_the_sqlite_warning(migrated_sqlite, argv):
    result = manage(*argv, env=migrated_sqlite)

    assert W001 not in result.stdout + result.stderr
    assert "System check identified some issues" not in result.stderr


@old_sqlite
def test_check_deploy_prints_the_sqlite_warning_with_its_hint(migrated_sqlite):
    result = manage("check", "--deploy", env=migrated_sqlite)

    assert f"({W001}) SQLite {sqlite3.sqlite_version} has the WAL-reset bug" in result.stderr
    assert "HINT: Use a Python built against SQLite 3.51.3 or newer" in result.stderr


@old_sqlite
def test_the_check_make_run_makes_prints_the_sqlite_warning_alone(migrated_sqlite):
    makefile = (ROOT / "Makefile").read_text()
    assert "manage.py check --deploy --tag sqlite" in makefile

    result = manage("check", "--deploy", "--tag", checks.SQLITE_TAG, env=migrated_sqlite)

    assert result.returncode == 0  # a warning never stops `make run`
    assert W001 in result.stderr
    assert "System check identified 1 issue (0 silenced)." in result.stderr


def test_the_sqlite_warning_is_a_deploy_check(monkeypatch):
    monkeypatch.setattr(checks, "uses_sqlite", lambda: True)
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 40, 1))

    tags = [checks.SQLITE_TAG]
    assert W001 not in [m.id for m in run_checks(tags=tags)]
    assert W001 in [m.id for m in run_checks(tags=tags, include_deployment_checks=True)]


@pytest.mark.django_db
def test_the_admin_index_shows_the_sqlite_warning_in_a_warning_box(admin_client, monkeypatch):
    monkeypatch.setattr(checks, "uses_sqlite", lambda: True)
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 40, 1))
    monkeypatch.setattr(checks.sqlite3, "sqlite_version", "3.40.1")

    page = admin_client.get("/admin/").content.decode()

    assert '<ul class="messagelist">' in page
    assert '<li class="warning">SQLite 3.40.1 has the WAL-reset bug' in page
    assert f"or use PostgreSQL (DATABASE_URL=postgres://...). See the README. ({W001})" in page
    # Shown on every visit, not queued for the next page.
    assert W001 in admin_client.get("/admin/").content.decode()
    assert W001 not in admin_client.get("/admin/api_client/exchange/").content.decode()


@pytest.mark.django_db
def test_the_admin_index_has_no_warning_on_postgresql(admin_client, monkeypatch):
    monkeypatch.setattr(checks, "uses_sqlite", lambda: False)

    page = admin_client.get("/admin/").content.decode()

    assert W001 not in page
    assert "Site administration" in page


@pytest.mark.django_db
def test_an_enabled_connection_that_cannot_be_used_is_a_warning_naming_it():
    from api_client.models import Connection

    Connection.objects.create(
        name="broken", base_url="ftp://example.com/", token_url="http://127.0.0.1:9/t",
        client_id="c", client_secret="s",
    )  # fmt: skip
    Connection.objects.create(
        name="off", enabled=False, base_url="ftp://example.com/", token_url="x", client_id="c"
    )

    found = [m for m in run_checks(databases=["default"]) if m.id == "api_client.W003"]
    without_database = [m for m in run_checks() if m.id == "api_client.W003"]

    assert [m.msg for m in found] == [
        "The connection 'broken' is not usable: base URL must be an absolute http(s) URL."
    ]
    assert without_database == []

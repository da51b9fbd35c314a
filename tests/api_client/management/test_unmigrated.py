"""Every command of ours, run by manage.py against a database that was never migrated, says so
in one line and exits 1: no traceback, no "database is busy", nothing sent."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands
from django.db import connection

from tests.helpers.processes import database_url_for_subprocess, reachable_postgres

ROOT = Path(__file__).resolve().parents[3]
OUR_APPS = ("api_client", "pocclient", "jobs")
NOT_OURS = {"db_worker"}  # django-tasks-db's worker, wrapped: it waits for tables to appear
NO_TABLES = "CommandError: The database has no tables yet; run `manage.py migrate` first.\n"
# Arguments that get each command past argparse; a new command needing some belongs here.
ARGUMENTS = {
    "add_connection": ["staging"],
    "api_request": ["GET", "whoami"],
    "send_batch": ["-"],
    "purge_exchanges": ["--older-than", "1"],
    "show_job": ["1"],
    "cancel_job": ["1"],
    "pause_job": ["1"],
    "resume_job": ["1"],
    "resend_job": ["1", "--failed"],
}


def our_commands() -> list[str]:
    commands = get_commands().items()
    return sorted(name for name, app in commands if app in OUR_APPS and name not in NOT_OURS)


def manage(*argv: str, database_url: str, closed_port: int) -> subprocess.CompletedProcess:
    nowhere = f"http://127.0.0.1:{closed_port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "POC_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=database_url,
        # Were anything sent, it would fail with "Could not reach", not with NO_TABLES.
        POC_API_BASE_URL=f"{nowhere}/api/",
        POC_API_TOKEN_URL=f"{nowhere}/token",
    )
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        input='{"path": "whoami"}\n',
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path) -> str:
    """A DATABASE_URL with no tables: a fresh SQLite file, or a PostgreSQL database seen through
    a search_path that holds no schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}"
    if connection.vendor == "postgresql":
        request.getfixturevalue("db")
        url = database_url_for_subprocess()
    else:
        url = reachable_postgres()  # the suite runs on SQLite: PostgreSQL is tried anyway
    return url + "?options=-c%20search_path%3Dno_such_schema"


def test_the_commands_under_test_include_every_command_of_ours():
    assert {"api_request", "send_batch", "refresh_token", "purge_exchanges", "ensure_admin"} <= (
        set(our_commands())
    )


@pytest.mark.parametrize("name", our_commands())
def test_a_never_migrated_database_is_one_line_and_exit_status_1(name, empty_database, closed_port):
    result = manage(
        name, *ARGUMENTS.get(name, []), database_url=empty_database, closed_port=closed_port
    )

    assert result.stderr == NO_TABLES, f"{name} needs ARGUMENTS? {result.stderr}"
    assert result.returncode == 1
    assert result.stdout == ""


def test_a_partly_migrated_database_names_the_missing_tables(tmp_path, closed_port):
    database_url = f"sqlite:///{tmp_path / 'partly.sqlite3'}"
    only_auth = manage("migrate", "auth", database_url=database_url, closed_port=closed_port)
    assert only_auth.returncode == 0, only_auth.stderr

    result = manage("refresh_token", database_url=database_url, closed_port=closed_port)

    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: The database lacks ")
    assert "tables (api_client_" in result.stderr
    assert result.stderr.endswith("; run `manage.py migrate` first.\n")
    assert result.stderr.count("\n") == 1


def test_an_unreachable_database_is_one_line_and_exit_status_1(tmp_path, closed_port):
    database_url = f"postgres://nobody@127.0.0.1:{closed_port}/nothing"

    result = manage(
        "purge_exchanges", "--older-than", "1", database_url=database_url, closed_port=closed_port
    )

    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: Cannot open the database: ")
    assert result.stderr.count("\n") == 1

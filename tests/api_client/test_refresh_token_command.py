"""manage.py refresh_token: reuse, --force, --if-expiring-within, and one-line failures."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from api_client.models import Token
from sandbox import stats

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = StringIO()
    call_command("refresh_token", *args, stdout=out)
    return out.getvalue()


def test_obtains_a_token_then_reuses_it(api_config):
    first = run()
    second = run()

    assert first.startswith("Obtained a new access token; it expires at ")
    assert second.startswith("The stored access token is valid; it expires at ")
    assert stats.grant_count() == 1
    token = Token.objects.get()
    assert token.access_token not in first + second


def test_force_always_refreshes(api_config):
    run()
    run("--force")
    run("--force")

    assert stats.grant_count() == 3
    assert stats.grant_count("refresh_token") == 2


def test_if_expiring_within_refreshes_only_when_the_token_is_close_to_expiry(api_config):
    run()
    assert run("--if-expiring-within", "600").startswith("The stored access token is valid")
    assert run("--if-expiring-within", "7200").startswith("Obtained a new access token")
    assert stats.grant_count() == 2


def test_rejected_client_is_a_one_line_command_error(configure_api):
    configure_api(CLIENT_SECRET="wrong-secret")

    with pytest.raises(CommandError) as caught:
        run()

    message = str(caught.value)
    assert "\n" not in message
    assert "rejected the client credentials" in message
    assert "wrong-secret" not in message


def test_unreachable_endpoint_is_a_one_line_command_error(configure_api, closed_port):
    configure_api(TOKEN_URL=f"http://127.0.0.1:{closed_port}/token", RETRIES=0)

    with pytest.raises(CommandError, match="Could not reach the token endpoint"):
        run()


def command(*args: str, name: str = "refresh_token", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", name, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_failure_exits_non_zero_with_the_reason_on_one_line(closed_port, tmp_path):
    database = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    assert command("--no-input", name="migrate", **database).returncode == 0

    result = command(
        POC_API_TOKEN_URL=f"http://127.0.0.1:{closed_port}/token",
        POC_API_RETRIES="0",
        DJANGO_LOG_LEVEL="WARNING",  # as in the README's cron example
        **database,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("CommandError: Could not reach the token endpoint")
    assert result.stderr.count("\n") == 1


def test_unmigrated_database_is_a_one_line_error(tmp_path):
    result = command(
        DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}", DJANGO_LOG_LEVEL="WARNING"
    )

    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: The database has no tables yet; run `manage.py migrate` first.\n"
    )  # every command alike: tests/api_client/management/test_unmigrated.py


@pytest.mark.parametrize(
    "args",
    [
        ["--if-expiring-within", "soon"],
        ["--if-expiring-within", "-5"],
        ["--force", "--if-expiring-within", "5"],
    ],
)
def test_bad_arguments_exit_with_status_2(args):
    result = command(*args)

    assert result.returncode == 2
    assert "error:" in result.stderr

"""What every api_client command shares: a request id per run, examples in --help."""

import pytest

from api_client.models import Exchange
from tests.helpers.exchanges import run_command

COMMANDS = ["api_request", "send_batch", "purge_exchanges", "refresh_token"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_examples_and_the_request_id_option(name, capsys, monkeypatch):
    result = run_command(name, "--help", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert f"\nexamples:\n  manage.py {name}" in result.out
    assert "--request-id ID" in result.out


@pytest.mark.django_db
@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("bad", ["has space", "-dash-first", "x" * 65, "a/b"])
def test_a_malformed_request_id_exits_2(name, bad, capsys, monkeypatch):
    result = run_command(name, f"--request-id={bad}", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert "argument --request-id: use 1 to 64 letters, digits and . _ : -" in result.err


def test_refresh_token_runs_under_its_request_id(api_config, capsys, monkeypatch):
    result = run_command(
        "refresh_token", "--request-id", "cron-refresh-1", capsys=capsys, monkeypatch=monkeypatch
    )

    assert result.status == 0
    assert result.out.startswith("Obtained a new access token; it expires at ")
    assert Exchange.objects.get(kind=Exchange.Kind.TOKEN).request_id == "cron-refresh-1"


def test_refresh_token_failure_is_one_line_and_exits_1(configure_api, capsys, monkeypatch):
    configure_api(CLIENT_SECRET="wrong")

    result = run_command("refresh_token", "--force", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert result.err.startswith("CommandError: The token endpoint refused the request")
    assert "POC_API_CLIENT_SECRET" in result.err
    assert result.err.count("\n") == 1

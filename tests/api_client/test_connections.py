"""Several APIs side by side: the sandbox as ``default`` and the hostile server (another port)
as the connection ``partner``, each with its own token, single flight, limits and pauses."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api_client import connections, encryption, tokens
from api_client.client import get_client
from api_client.connections import UnknownConnectionError
from api_client.exceptions import InvalidRequestError, ResponseTooLargeError, RetryLaterError
from api_client.management.commands.rotate_encryption_key import rotate_tokens
from api_client.models import Connection, Exchange, RatePause, Token
from sandbox import stats
from tests.conftest import HOSTILE_ID, HOSTILE_SECRET
from tests.helpers.processes import database_url_for_subprocess

ROOT = Path(__file__).resolve().parents[2]


def add_partner(url: str, **fields) -> Connection:
    values = {
        "base_url": f"{url}/api/",
        "token_url": f"{url}/oauth/token",
        "client_id": HOSTILE_ID,
        "client_secret": HOSTILE_SECRET,
        "connect_timeout": 2.0,
        "read_timeout": 10.0,
        "backoff_factor": 0.0,
        "retries": 0,
        "retry_after_max": 2,
        **fields,
    }
    return Connection.objects.create(name=fields.pop("name", "partner"), **values)


@pytest.fixture
def partner(hostile, api_config) -> Connection:
    """The hostile server as the connection ``partner``, beside the sandbox as ``default``."""
    row = add_partner(hostile.url)
    yield row
    tokens.clear_cache()


def test_each_connection_has_its_own_token_and_its_own_exchanges(partner, hostile):
    assert get_client().get("whoami").status == 200
    assert get_client("partner").get("items/1").status == 200

    assert stats.grant_count() == 1 and hostile.grants == 1
    by_connection = dict(Token.objects.values_list("connection", "token_url"))
    assert by_connection == {
        "default": get_client().config.TOKEN_URL,
        "partner": f"{hostile.url}/oauth/token",
    }
    calls = Exchange.objects.filter(kind="api")
    assert sorted(calls.values_list("connection", "path")) == [
        ("default", "/whoami"),
        ("partner", "/items/1"),
    ]
    # What partner received came with partner's token, never default's.
    [call] = [r for r in hostile.received if r.path.startswith("/api/")]
    assert call.header("Authorization") == f"Bearer {get_client('partner').tokens.get_token()}"


def test_two_connections_with_the_same_credentials_do_not_share_a_token(api_config):
    Connection.objects.create(
        name="twin",
        base_url=api_config.BASE_URL,
        token_url=api_config.TOKEN_URL,
        client_id=api_config.CLIENT_ID,
        client_secret=api_config.CLIENT_SECRET,
    )

    first = get_client().tokens.get_token()
    second = get_client("twin").tokens.get_token()

    assert first != second
    assert stats.grant_count() == 2
    assert Token.objects.count() == 2


def test_single_flight_holds_per_connection_across_threads(partner, hostile):
    barrier = threading.Barrier(16)
    got: list[str] = []

    def race(name: str) -> None:
        barrier.wait()
        try:
            got.append(get_client(name).tokens.get_token())
        finally:
            connection.close()

    threads = [
        threading.Thread(target=race, args=("partner" if n % 2 else "default",)) for n in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(got) == 16 and len(set(got)) == 2
    assert hostile.grants == 1 and stats.grant_count() == 1


def test_single_flight_holds_per_connection_across_processes(partner, hostile, api_config):
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "POC_API_BASE_URL": api_config.BASE_URL,
        "POC_API_TOKEN_URL": api_config.TOKEN_URL,
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    start_at = time.time() + 4  # time for three interpreters to start Django
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.token_race", "6", str(start_at), "partner"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]

    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outputs]
    got = [token for out, _ in outputs for token in json.loads(out)]
    assert len(got) == 18 and len(set(got)) == 1, got
    assert hostile.grants == 1
    assert stats.grant_count() == 0  # default's token endpoint was never asked
    assert Token.objects.get().connection == "partner"


def test_a_429_pause_on_one_connection_never_slows_another(partner, hostile):
    refused = get_client("partner").get("too-many", query={"seconds": "3600"})
    assert refused.status == 429
    assert RatePause.objects.count() == 1

    # A pause longer than RETRY_AFTER_MAX fails a call at once: default is not paused.
    assert get_client().get("whoami").status == 200
    with pytest.raises(RetryLaterError):
        get_client("partner").get("items/1")  # partner waits out its own pause
    assert not [r for r in hostile.received if r.path == "/api/items/1"]


def test_a_rate_limit_on_one_connection_never_counts_another_s_calls(partner, hostile):
    partner.rate_limit = "1/min"
    partner.save()

    assert get_client("partner").get("items/1").status == 200
    for _ in range(3):
        assert get_client().get("whoami").status == 200  # default has no limit
    with pytest.raises(RetryLaterError):
        get_client("partner").get("items/2")  # a minute's window, its one call spent
    assert not [r for r in hostile.received if r.path == "/api/items/2"]


def test_an_unknown_a_switched_off_and_a_broken_connection_say_so_by_name(partner, settings):
    with pytest.raises(UnknownConnectionError, match="no connection named 'nowhere'"):
        get_client("nowhere")

    partner.enabled = False
    partner.save()
    with pytest.raises(UnknownConnectionError, match="'partner' is switched off"):
        get_client("partner")

    partner.enabled, partner.base_url = True, "ftp://example.com/"
    partner.save()
    with pytest.raises(UnknownConnectionError, match="'partner' is not usable: base URL must"):
        get_client("partner")


def test_a_refused_connection_is_read_again_only_after_a_while_or_when_saved(partner):
    partner.enabled = False
    partner.save()

    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            with pytest.raises(UnknownConnectionError, match="'partner' is switched off"):
                get_client("partner")
    assert len(queries) == 1  # one read of the row, not one per use

    partner.enabled = True
    partner.save()  # this process forgets what it saw
    assert get_client("partner").config.NAME == "partner"


def test_a_client_secret_no_key_decrypts_is_a_clear_error_naming_the_connection(partner, settings):
    other = "pYVBe3b4QRVKxkzqo-IvQQWNWfZRGiNSC07iAFHDmvY="
    settings.POC_ENCRYPTION_KEYS = [other]  # the row was encrypted under the test key
    connections.forget()

    with pytest.raises(UnknownConnectionError) as caught:
        get_client("partner")

    assert "client secret of the connection 'partner' cannot be decrypted" in caught.value.message
    assert HOSTILE_SECRET not in caught.value.message


def test_an_edit_reaches_the_shared_client_at_once_in_this_process(partner, hostile):
    before = get_client("partner")
    partner.read_timeout = 7.0
    partner.save()

    after = get_client("partner")

    assert after is not before and after.config.READ_TIMEOUT == 7.0
    assert get_client("partner") is after  # unchanged: the same client


def test_rotating_the_key_keeps_live_tokens_and_client_secrets(partner, hostile, settings):
    old = settings.POC_ENCRYPTION_KEYS[0]
    token = get_client("partner").tokens.get_token()
    new = "bJ3oDqH8cTJg3nK4yWzR9Xl5b0Gm2VtZ1aQpE6sUuYc="
    settings.POC_ENCRYPTION_KEYS = [new, old]

    rotation = rotate_tokens()

    assert rotation.connections == 1 and rotation.lost_connections == ()
    settings.POC_ENCRYPTION_KEYS = [new]  # the old key dropped: everything still reads
    connections.forget()
    tokens.clear_cache()
    client = get_client("partner")
    assert client.config.CLIENT_SECRET == HOSTILE_SECRET
    assert client.tokens.get_token() == token
    assert hostile.grants == 1


def test_a_dump_of_the_database_holds_no_client_secret_in_the_clear(partner):
    secret = "partner-secret-that-must-not-leak-1c5e"
    partner.client_secret = secret
    partner.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM api_client_connection WHERE name = 'partner'")
        [(stored,)] = cursor.fetchall()
    assert stored.startswith("gAAAA") and encryption.decrypt(stored) == secret

    if connection.vendor == "postgresql":
        db = connection.settings_dict
        if not shutil.which("pg_dump"):
            pytest.fail("pg_dump is missing: install postgresql-client")
        host, port = db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432)
        dump = subprocess.run(
            ["pg_dump", "--data-only", "-h", host, "-p", port, "-U", db["USER"], db["NAME"]],
            env={**os.environ, "PGPASSWORD": db["PASSWORD"] or ""},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    else:
        with closing(sqlite3.connect(connection.settings_dict["NAME"])) as db:
            dump = "\n".join(db.iterdump())
    assert stored in dump  # the row is there, encrypted
    assert secret not in dump


def test_confinement_bounds_and_redaction_hold_for_another_connection(partner, hostile):
    client = get_client("partner")
    with pytest.raises(InvalidRequestError):
        client.get("../oauth/token")
    partner.max_response_bytes = 100_000
    partner.save()
    client = get_client("partner")
    with pytest.raises(ResponseTooLargeError, match="the connection 'partner': max_response_b"):
        client.get("huge", query={"mb": "1"})

    echoed = client.get("echo-secrets")

    token = client.tokens.get_token()
    assert echoed.status == 200
    for row in Exchange.objects.all():
        stored = json.dumps(
            [row.request_headers, row.request_body, row.response_headers, row.response_body]
        )
        assert token not in stored and HOSTILE_SECRET not in stored
    assert not [r for r in hostile.received if "oauth/token" in r.path and r.method == "GET"]

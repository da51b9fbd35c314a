"""Token lifecycle against the live sandbox: obtain, persist, reuse, refresh, rotate, fall back."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api_client import ratelimit, tokens
from api_client.client import ApiClient
from api_client.exceptions import (
    InvalidClientError,
    InvalidScopeError,
    TokenEndpointError,
    TokenError,
)
from api_client.models import Exchange, Token
from sandbox import stats


def stored() -> Token:
    return Token.objects.get()


def test_first_call_obtains_and_persists_a_token(api):
    response = api.get("whoami")

    assert response.status == 200
    row = stored()
    assert row.access_token and row.refresh_token
    assert row.expires_at > timezone.now()
    assert row.client_id == "sandbox-client"
    assert stats.grant_count("client_credentials") == 1
    assert Exchange.objects.filter(kind=Exchange.Kind.TOKEN, status=200).count() == 1


def test_token_is_reused_across_calls_without_a_database_read(api, monkeypatch):
    monkeypatch.setattr(ratelimit, "PAUSE_READ_EVERY", 3600)  # however slow this machine is
    api.get("whoami")

    with CaptureQueriesContext(connection) as queries:
        api.get("whoami")
    assert stats.grant_count() == 1
    # What this thread ran is the exchange's own record (written here when the log is free):
    # no read at all, and nothing of the token's.
    statements = [q["sql"] for q in queries.captured_queries]
    assert statements, "the exchange is written on this thread's connection"
    assert not [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in statements if "api_client_token" in sql]


def test_persisted_token_is_reused_by_a_new_client_instance(api, api_config):
    api.get("whoami")
    tokens.clear_cache()  # a new process: nothing cached, only the database

    other = ApiClient(api_config)
    try:
        assert other.get("whoami").status == 200
    finally:
        other.close()
    assert stats.grant_count() == 1


def test_token_is_refreshed_before_it_expires(api, sandbox_settings):
    sandbox_settings(TOKEN_LIFETIME=4)  # leeway 60 s is capped at half the life: 2 s
    api.get("whoami")
    first = stored()

    time.sleep(2.2)
    assert api.get("whoami").status == 200

    second = stored()
    assert second.access_token != first.access_token
    assert stats.grant_count("refresh_token") == 1
    # the old token had not expired yet: the refresh was proactive
    assert second.obtained_at < first.expires_at


def test_short_lived_token_is_reused_until_half_its_life(api, sandbox_settings):
    sandbox_settings(TOKEN_LIFETIME=30)
    for _ in range(5):
        api.get("whoami")
    assert stats.grant_count() == 1


def test_refresh_token_rotates_and_the_used_one_stops_working(api, api_config):
    api.get("whoami")
    old_refresh = stored().refresh_token

    status, refreshed = api.tokens.ensure(force=True)

    assert refreshed and status.state == "valid"
    assert stored().refresh_token != old_refresh
    assert stats.grant_count("refresh_token") == 1
    # the sandbox refuses the used refresh token
    Token.objects.update(refresh_token=old_refresh)
    tokens.clear_cache()
    api.tokens.ensure(force=True)
    assert stats.grant_count("client_credentials") == 2  # fell back


def test_refused_refresh_token_falls_back_to_client_credentials(api):
    api.get("whoami")
    Token.objects.update(refresh_token="not-a-refresh-token", expires_at=timezone.now())
    tokens.clear_cache()

    assert api.get("whoami").status == 200

    assert stats.grant_count("client_credentials") == 2
    assert stats.grant_count("refresh_token") == 0
    refused = Exchange.objects.filter(kind=Exchange.Kind.TOKEN, status=400).get()
    assert "invalid_grant" in refused.response_body


def test_provider_without_refresh_tokens_gets_client_credentials_each_time(api, sandbox_settings):
    sandbox_settings(ISSUE_REFRESH_TOKENS=False)
    api.get("whoami")
    assert stored().refresh_token == ""

    api.tokens.ensure(force=True)

    assert stats.grant_count("client_credentials") == 2


def test_missing_expires_in_uses_the_configured_default_lifetime(configure_api, sandbox_settings):
    sandbox_settings(OMIT_EXPIRES_IN=True)
    client = configure_api(DEFAULT_TOKEN_LIFETIME=1234)

    client.get("whoami")

    row = stored()
    assert row.lifetime == timedelta(seconds=1234)


def test_401_causes_exactly_one_refresh_and_one_retry(api):
    api.get("whoami")
    # The API revokes the token early: we still believe it valid for an hour.
    Token.objects.update(access_token="revoked-token-value")
    tokens.clear_cache()

    response = api.get("whoami")

    assert response.status == 200
    assert response.attempts == 2
    assert stats.grant_count() == 2
    assert stats.snapshot()["requests"]["by_status"].get("401") == 1


def test_persistent_401_is_returned_after_one_refresh_and_one_retry(api):
    api.get("whoami")

    response = api.get("echo", query={"status": "401"})  # the sandbox answers 401 every time

    assert response.status == 401
    assert response.attempts == 2
    assert stats.grant_count() == 2


def test_wrong_client_secret_raises_invalid_client(configure_api):
    client = configure_api(CLIENT_SECRET="wrong-secret")

    with pytest.raises(InvalidClientError) as caught:
        client.get("whoami")

    assert "POC_API_CLIENT_SECRET" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)
    row = stored()
    assert row.last_error and row.state(60).value == "failed"


def test_a_refusal_names_the_settings_as_the_connection_has_them(api_config):
    client = ApiClient(api_config.with_overrides(NAME="partner", CLIENT_SECRET="wrong-secret"))

    with pytest.raises(InvalidClientError) as caught:
        client.get("whoami")
    client.close()

    message = str(caught.value)
    assert "Check the connection 'partner': client_id, client_secret." in message
    assert "POC_API" not in message and "wrong-secret" not in message


def test_client_secret_in_the_body_is_accepted(configure_api):
    client = configure_api(CLIENT_AUTH="body")

    assert client.get("whoami").status == 200
    token_exchange = Exchange.objects.get(kind=Exchange.Kind.TOKEN)
    assert "client_secret=%5Bredacted%5D" in token_exchange.request_body
    assert "Authorization" not in token_exchange.request_headers


def test_refused_scope_raises_invalid_scope(configure_api):
    client = configure_api(SCOPE="admin")

    with pytest.raises(InvalidScopeError):
        client.get("whoami")


def test_requested_scope_is_stored(configure_api):
    client = configure_api(SCOPE="read")

    assert client.get("whoami").json()["scope"] == "read"
    assert stored().scope == "read"


def test_unreachable_token_endpoint_raises_a_clear_error(configure_api, closed_port):
    client = configure_api(TOKEN_URL=f"http://127.0.0.1:{closed_port}/oauth/token", RETRIES=0)

    with pytest.raises(TokenEndpointError) as caught:
        client.get("whoami")

    assert "Could not reach the token endpoint" in str(caught.value)
    assert "refused" in str(caught.value)
    assert Exchange.objects.get(kind=Exchange.Kind.TOKEN).error_code == "connection_error"


def test_token_endpoint_answering_500_raises_token_endpoint_error(configure_api, sandbox_root):
    client = configure_api(TOKEN_URL=f"{sandbox_root}oauth/token?status=500")

    with pytest.raises(TokenEndpointError) as caught:
        client.get("whoami")

    assert "answered 500" in str(caught.value)
    assert Exchange.objects.get(kind=Exchange.Kind.TOKEN).status == 500
    # The API call that could not be sent is recorded too, with the reason, and never sent.
    call = Exchange.objects.get(kind=Exchange.Kind.API)
    assert caught.value.exchange_id == call.pk
    assert (call.status, call.attempts, call.error_code) == (None, 0, "token_endpoint_error")
    assert "Authorization" not in call.request_headers


def test_failed_refresh_is_shared_with_waiting_callers_not_repeated(configure_api):
    """A caller that waited while a refresh failed gets that failure, not a second attempt."""
    client = configure_api(CLIENT_SECRET="wrong-secret")
    with pytest.raises(TokenError):
        client.get("whoami")
    before = timezone.now() - timedelta(seconds=5)

    with pytest.raises(TokenError, match="rejected the client credentials"):
        client.tokens._obtain(stale=None, started=before)

    assert Exchange.objects.filter(kind=Exchange.Kind.TOKEN).count() == 1


def test_ensure_if_expiring_within_refreshes_only_when_due(api):
    api.get("whoami")

    _, refreshed = api.tokens.ensure(if_expiring_within=60)
    assert not refreshed

    _, refreshed = api.tokens.ensure(if_expiring_within=7200)
    assert refreshed
    assert stats.grant_count() == 2


def test_status_never_contains_the_token(api):
    api.get("whoami")
    row = stored()

    status = api.tokens.status().as_dict()

    assert status["state"] == "valid"
    assert 3500 < status["expires_in"] <= 3600
    assert row.access_token not in str(status)
    assert row.refresh_token not in str(status)

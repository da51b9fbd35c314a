import hashlib
import hmac
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from sandbox.models import Grant
from sandbox.tokens import InvalidTokenError, verify_access_token
from tests.sandbox.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    FORM,
    ODD_CLIENT_ID,
    ODD_CLIENT_SECRET,
    TOKEN_URL,
    basic,
    grant,
    post_token,
)

pytestmark = pytest.mark.django_db

CC = {"grant_type": "client_credentials"}


def refresh(client, refresh_token: str, *, authorization: str | None = None, **params: str):
    return post_token(
        client,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **params},
        authorization=authorization or basic(),
    )


def assert_oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    return body


# --- client_credentials and client authentication -----------------------------------------


def test_client_credentials_with_basic_auth_issues_a_bearer_token(client):
    response = post_token(client, CC, authorization=basic())

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    claims = verify_access_token(body["access_token"])
    assert (claims.client_id, claims.scope) == (CLIENT_ID, "read write")


def test_client_credentials_with_body_auth_issues_a_token(client):
    params = {**CC, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    response = post_token(client, params)

    assert response.status_code == 200
    assert verify_access_token(response.json()["access_token"]).client_id == CLIENT_ID


def test_basic_credentials_are_form_urldecoded(client):
    response = post_token(client, CC, authorization=basic(ODD_CLIENT_ID, ODD_CLIENT_SECRET))

    assert response.status_code == 200
    assert verify_access_token(response.json()["access_token"]).client_id == ODD_CLIENT_ID


def test_basic_credentials_that_were_not_urlencoded_are_refused(client):
    # "+" in the raw secret decodes to a space, so the secret no longer matches.
    authorization = basic(ODD_CLIENT_ID, ODD_CLIENT_SECRET, encode=False)
    response = post_token(client, CC, authorization=authorization)

    assert_oauth_error(response, 401, "invalid_client")


def test_every_grant_is_recorded_with_only_a_hash_of_the_refresh_token(client):
    body = grant(client)

    row = Grant.objects.get()
    assert (row.grant_type, row.client_id, row.scope) == (
        "client_credentials",
        CLIENT_ID,
        "read write",
    )
    assert row.refresh_token_hash == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    assert row.used_at is None


def test_basic_and_body_secret_at_once_is_an_invalid_request(client):
    params = {**CC, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    response = post_token(client, params, authorization=basic())

    assert_oauth_error(response, 400, "invalid_request")


def test_body_client_id_matching_basic_is_accepted(client):
    response = post_token(client, {**CC, "client_id": CLIENT_ID}, authorization=basic())

    assert response.status_code == 200


def test_body_client_id_differing_from_basic_is_an_invalid_request(client):
    response = post_token(client, {**CC, "client_id": "someone-else"}, authorization=basic())

    assert_oauth_error(response, 400, "invalid_request")


def test_wrong_secret_with_basic_is_invalid_client_with_a_basic_challenge(client):
    response = post_token(client, CC, authorization=basic(CLIENT_ID, "wrong"))

    assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"] == 'Basic realm="sandbox"'


def test_unknown_client_with_basic_is_invalid_client(client):
    response = post_token(client, CC, authorization=basic("nobody", CLIENT_SECRET))

    assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"] == 'Basic realm="sandbox"'


def test_wrong_secret_in_body_is_invalid_client_without_a_challenge(client):
    params = {**CC, "client_id": CLIENT_ID, "client_secret": "wrong"}
    response = post_token(client, params)

    assert_oauth_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" not in response


def test_client_id_without_secret_is_invalid_client(client):
    response = post_token(client, {**CC, "client_id": CLIENT_ID})

    assert_oauth_error(response, 401, "invalid_client")


def test_missing_client_authentication_is_invalid_client(client):
    response = post_token(client, CC)

    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "authorization", ["Basic !!!notbase64", "Basic " + "bm9jb2xvbg==", "Bearer abc", "Basic"]
)
def test_malformed_or_non_basic_authorization_is_invalid_client(client, authorization):
    response = post_token(client, CC, authorization=authorization)

    assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"] == 'Basic realm="sandbox"'


def test_secret_comparison_uses_compare_digest(client, monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))

    post_token(client, CC, authorization=basic())

    assert calls


# --- request errors ----------------------------------------------------------------------


def test_missing_grant_type_is_an_invalid_request(client):
    response = post_token(client, {}, authorization=basic())

    body = assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"]
    assert response["Cache-Control"] == "no-store"


def test_unknown_grant_type_is_unsupported_grant_type(client):
    response = post_token(client, {"grant_type": "password"}, authorization=basic())

    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_repeated_parameter_is_an_invalid_request(client):
    response = client.post(
        TOKEN_URL,
        data="grant_type=client_credentials&grant_type=client_credentials",
        content_type=FORM,
        headers={"Authorization": basic()},
    )

    body = assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"]


def test_json_body_is_an_invalid_request(client):
    response = client.post(
        TOKEN_URL, data=CC, content_type="application/json", headers={"Authorization": basic()}
    )

    assert_oauth_error(response, 400, "invalid_request")


def test_get_on_the_token_endpoint_is_a_json_405(client):
    response = client.get(TOKEN_URL)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "POST"


# --- scope ---------------------------------------------------------------------------------


def test_requested_subset_of_scopes_is_granted(client):
    assert grant(client, scope="read")["scope"] == "read"


def test_granted_scope_is_in_canonical_order(client):
    assert grant(client, scope="write  read")["scope"] == "read write"


def test_empty_scope_gets_every_allowed_scope(client):
    assert grant(client, scope="")["scope"] == "read write"


def test_scope_outside_the_allowed_set_is_invalid_scope(client):
    response = post_token(client, {**CC, "scope": "read admin"}, authorization=basic())

    body = assert_oauth_error(response, 400, "invalid_scope")
    assert "admin" in body["error_description"]
    assert not Grant.objects.exists()


def test_scopes_setting_defines_the_allowed_set(client, settings):
    settings.SANDBOX = {**settings.SANDBOX, "SCOPES": "items:read items:write"}

    assert grant(client)["scope"] == "items:read items:write"
    response = post_token(client, {**CC, "scope": "read"}, authorization=basic())
    assert_oauth_error(response, 400, "invalid_scope")


# --- refresh_token -------------------------------------------------------------------------


def test_refresh_token_grant_issues_a_new_access_and_refresh_token(client):
    first = grant(client)

    response = refresh(client, first["refresh_token"])

    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "read write"
    assert response["Cache-Control"] == "no-store"
    assert Grant.objects.filter(grant_type="refresh_token").count() == 1


def test_refresh_with_body_client_authentication_works(client):
    first = grant(client)
    params = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }

    assert post_token(client, params).status_code == 200


def test_used_refresh_token_is_refused(client):
    first = grant(client)
    assert refresh(client, first["refresh_token"]).status_code == 200

    response = refresh(client, first["refresh_token"])

    assert_oauth_error(response, 400, "invalid_grant")


def test_rotated_refresh_token_works_once_more(client):
    first = grant(client)
    second = refresh(client, first["refresh_token"]).json()

    assert refresh(client, second["refresh_token"]).status_code == 200


def test_unknown_refresh_token_is_invalid_grant(client):
    assert_oauth_error(refresh(client, "not-a-token"), 400, "invalid_grant")


def test_missing_refresh_token_is_an_invalid_request(client):
    response = post_token(client, {"grant_type": "refresh_token"}, authorization=basic())

    assert_oauth_error(response, 400, "invalid_request")


def test_another_clients_refresh_token_is_invalid_grant_and_stays_usable(client):
    theirs = grant(client)["refresh_token"]

    response = refresh(client, theirs, authorization=basic(ODD_CLIENT_ID, ODD_CLIENT_SECRET))

    assert_oauth_error(response, 400, "invalid_grant")
    assert refresh(client, theirs).status_code == 200


def test_refresh_may_narrow_the_scope(client):
    first = grant(client)

    response = refresh(client, first["refresh_token"], scope="read")

    assert response.json()["scope"] == "read"
    assert verify_access_token(response.json()["access_token"]).scope == "read"


def test_refresh_may_not_widen_the_scope_and_does_not_burn_the_token(client):
    first = grant(client, scope="read")

    assert_oauth_error(
        refresh(client, first["refresh_token"], scope="read write"), 400, "invalid_scope"
    )
    assert refresh(client, first["refresh_token"]).json()["scope"] == "read"


@pytest.mark.django_db(transaction=True)
def test_racing_refreshes_with_one_token_succeed_exactly_once():
    first = grant(Client())
    barrier = threading.Barrier(6, timeout=10)
    statuses = []

    def race() -> None:
        try:
            barrier.wait()
            statuses.append(refresh(Client(), first["refresh_token"]).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [400] * 5
    assert Grant.objects.filter(grant_type="refresh_token").count() == 1


# --- optional provider behaviours ----------------------------------------------------------


def test_no_refresh_token_when_issuing_them_is_off(client, settings):
    settings.SANDBOX = {**settings.SANDBOX, "ISSUE_REFRESH_TOKENS": False}

    body = grant(client)

    assert "refresh_token" not in body
    assert Grant.objects.get().refresh_token_hash is None


def test_omitted_expires_in_still_signs_a_real_expiry(client, settings):
    settings.SANDBOX = {**settings.SANDBOX, "OMIT_EXPIRES_IN": True, "TOKEN_LIFETIME": 120}

    body = grant(client)

    assert "expires_in" not in body
    verify_access_token(body["access_token"], now=time.time() + 100)
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_access_token(body["access_token"], now=time.time() + 121)


def test_token_lifetime_setting_sets_expires_in_and_expiry(client, settings):
    settings.SANDBOX = {**settings.SANDBOX, "TOKEN_LIFETIME": 1}

    body = grant(client)

    assert body["expires_in"] == 1
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_access_token(body["access_token"], now=time.time() + 1.5)

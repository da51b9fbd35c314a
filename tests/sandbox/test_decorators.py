"""Bearer authentication and JSON-only answers, as every sandbox view gets them."""

import time

import pytest
from django.test import Client

from sandbox import stats
from sandbox.tokens import make_access_token
from tests.sandbox.helpers import CLIENT_ID, bearer, grant

pytestmark = pytest.mark.django_db

WHOAMI = "/sandbox/api/whoami"


def assert_invalid_token(response, description_part: str) -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_token"
    assert description_part in body["error_description"]
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith(
        'Bearer realm="sandbox", error="invalid_token", error_description="'
    )
    assert body["error_description"] in challenge


def test_missing_bearer_token_is_invalid_token(client):
    assert_invalid_token(client.get(WHOAMI), "No bearer token")


@pytest.mark.parametrize("authorization", ["Basic abc", "Bearer", "Bearer   ", "Token abc"])
def test_malformed_authorization_header_is_invalid_token(client, authorization):
    response = client.get(WHOAMI, headers={"Authorization": authorization})

    assert_invalid_token(response, "Bearer <token>")


def test_expired_token_is_invalid_token(client):
    token = make_access_token(CLIENT_ID, "read", expires_at=time.time() - 1)

    assert_invalid_token(client.get(WHOAMI, headers=bearer(token)), "expired")


def test_forged_token_is_invalid_token(client, headers):
    token = headers["Authorization"].removeprefix("Bearer ")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")

    assert_invalid_token(client.get(WHOAMI, headers=bearer(forged)), "signature")


def test_bearer_scheme_is_case_insensitive(client, headers):
    token = headers["Authorization"].removeprefix("Bearer ")

    assert client.get(WHOAMI, headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_token_with_one_second_lifetime_works_then_expires(client, settings):
    settings.SANDBOX = {**settings.SANDBOX, "TOKEN_LIFETIME": 1}
    token = grant(client)["access_token"]
    assert client.get(WHOAMI, headers=bearer(token)).status_code == 200

    time.sleep(1.05)

    assert_invalid_token(client.get(WHOAMI, headers=bearer(token)), "expired")


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/",
        "/sandbox/nothing",
        "/sandbox/api/",
        "/sandbox/api/nothing",
        "/sandbox/api/items/",
        "/sandbox/api/items/abc",
        "/sandbox/api/whoami/",
        "/sandbox/oauth/token/",
    ],
)
def test_unknown_sandbox_paths_are_json_404s(client, headers, path):
    response = client.get(path, headers=headers)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("delete", WHOAMI, "GET, HEAD"),
        ("put", "/sandbox/api/items", "GET, POST, HEAD"),
        ("post", "/sandbox/api/items/1", "GET, PUT, PATCH, DELETE, HEAD"),
        ("post", "/sandbox/stats", "GET, HEAD"),
        ("get", "/sandbox/stats/reset", "POST"),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(client, headers, method, path, allow):
    response = getattr(client, method)(path, headers=headers)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == allow
    assert response.json()["error"] == "method_not_allowed"


def test_a_failing_view_is_a_json_500(client, monkeypatch):
    def explode() -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(stats, "snapshot", explode)

    response = client.get("/sandbox/stats")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "server_error"
    assert "boom" not in response.content.decode()


def test_oversized_body_is_a_json_413(client, headers, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10

    response = client.post(
        "/sandbox/api/echo", data={"x": "y" * 100}, content_type="application/json", headers=headers
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"


def test_sandbox_views_need_no_csrf_token(headers):
    strict = Client(enforce_csrf_checks=True)

    assert strict.post("/sandbox/api/echo", headers=headers).status_code == 200
    assert strict.post("/sandbox/stats/reset").status_code == 204

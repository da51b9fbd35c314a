import json
import os
from datetime import datetime

import pytest

from tests.sandbox.helpers import CLIENT_ID, bearer, grant

pytestmark = pytest.mark.django_db

ECHO = "/sandbox/api/echo"


def test_whoami_describes_the_presented_token(client):
    token = grant(client, scope="read")["access_token"]

    response = client.get("/sandbox/api/whoami", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert (body["client_id"], body["scope"]) == (CLIENT_ID, "read")
    assert datetime.fromisoformat(body["expires_at"]).tzinfo is not None


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
def test_echo_answers_every_method(client, headers, method):
    response = getattr(client, method)(ECHO, headers=headers)

    assert response.status_code == 200
    assert response.json()["method"] == method.upper()


def test_echo_answers_head_without_a_body(client, headers):
    response = client.head(ECHO, headers=headers)

    assert response.status_code == 200
    assert response.content == b""


def test_echo_reports_path_and_query(client, headers):
    response = client.get(f"{ECHO}/a/b/c.json?x=1&x=2&y=", headers=headers)

    body = response.json()
    assert body["path"] == "/sandbox/api/echo/a/b/c.json"
    assert body["query"] == {"x": ["1", "2"], "y": [""]}


def test_echo_parses_a_json_body(client, headers):
    payload = {"a": [1, 2, {"b": None}]}

    response = client.post(ECHO, data=payload, content_type="application/json", headers=headers)

    body = response.json()
    assert (body["json"], body["body"]) == (payload, None)


def test_echo_returns_a_non_json_body_as_text(client, headers):
    response = client.put(ECHO, data="a=1&b=2", content_type="text/plain", headers=headers)

    body = response.json()
    assert (body["json"], body["body"]) == (None, "a=1&b=2")


def test_echo_without_a_body_has_neither(client, headers):
    body = client.get(ECHO, headers=headers).json()

    assert (body["json"], body["body"]) == (None, None)


def test_echo_refuses_invalid_json_naming_the_problem(client, headers):
    response = client.post(ECHO, data="{nope", content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "not valid JSON" in response.json()["error_description"]


def test_echo_never_echoes_authorization_or_cookie(client, headers):
    client.cookies["sessionid"] = "secret-session"
    response = client.get(
        ECHO, headers={**headers, "Proxy-Authorization": "Basic eg==", "X-Trace": "t1"}
    )

    echoed = {name.lower(): value for name, value in response.json()["headers"].items()}
    assert echoed["x-trace"] == "t1"
    assert not {"authorization", "cookie", "proxy-authorization"} & set(echoed)
    token = headers["Authorization"].removeprefix("Bearer ")
    assert token not in response.content.decode()
    assert "secret-session" not in response.content.decode()


def test_stats_endpoint_reports_counts_and_pid(client, headers):
    response = client.get("/sandbox/stats")

    assert response.status_code == 200
    body = response.json()
    assert body["pid"] == os.getpid()
    assert body["grants"] == {"client_credentials": 1, "refresh_token": 0, "total": 1}
    assert body["requests"] == {"total": 1, "by_status": {"200": 1}}


def test_stats_endpoint_leaks_no_secrets_or_tokens(client, headers):
    token = headers["Authorization"].removeprefix("Bearer ")

    content = client.get("/sandbox/stats").content.decode()

    assert token not in content
    assert "sandbox-secret" not in content
    assert json.loads(content)  # and it is JSON


def test_stats_reset_endpoint_clears_request_counters(client, headers):
    response = client.post("/sandbox/stats/reset")

    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Type" not in response
    body = client.get("/sandbox/stats").json()
    assert body["requests"] == {"total": 0, "by_status": {}}
    assert body["grants"]["total"] == 1  # grants are rows, not counters

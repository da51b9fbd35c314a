import time

import pytest

from sandbox import faults
from tests.sandbox.helpers import basic, bearer, post_token

pytestmark = pytest.mark.django_db

WHOAMI = "/sandbox/api/whoami"
CC = {"grant_type": "client_credentials"}


def assert_injected(response, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "injected", "status": status}


def test_status_injects_that_status(client, headers):
    assert_injected(client.get(f"{WHOAMI}?status=503", headers=headers), 503)


def test_injected_status_replaces_a_created_item(client, headers):
    response = client.post(
        "/sandbox/api/items?status=500",
        data={"name": "x"},
        content_type="application/json",
        headers=headers,
    )

    assert_injected(response, 500)


def test_injected_bodyless_status_has_no_body(client, headers):
    response = client.get(f"{WHOAMI}?status=204", headers=headers)

    assert response.status_code == 204
    assert response.content == b""


def test_retry_after_is_added_to_an_injected_response(client, headers):
    response = client.get(f"{WHOAMI}?status=429&retry_after=3", headers=headers)

    assert_injected(response, 429)
    assert response["Retry-After"] == "3"


def test_retry_after_alone_changes_nothing(client, headers):
    response = client.get(f"{WHOAMI}?retry_after=3", headers=headers)

    assert response.status_code == 200
    assert "Retry-After" not in response


def test_delay_sleeps_before_answering(client, headers):
    started = time.monotonic()
    response = client.get(f"{WHOAMI}?delay=0.2", headers=headers)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fail_first_fails_only_the_first_n_requests_with_a_key(client, headers):
    url = f"{WHOAMI}?status=503&fail_first=2&key=k1"

    statuses = [client.get(url, headers=headers).status_code for _ in range(4)]

    assert statuses == [503, 503, 200, 200]


def test_fail_first_counts_each_key_separately(client, headers):
    assert client.get(f"{WHOAMI}?fail_first=1&key=a", headers=headers).status_code == 503
    assert client.get(f"{WHOAMI}?fail_first=1&key=b", headers=headers).status_code == 503
    assert client.get(f"{WHOAMI}?fail_first=1&key=a", headers=headers).status_code == 200


def test_fail_first_without_status_injects_503(client, headers):
    assert_injected(client.get(f"{WHOAMI}?fail_first=1&key=k", headers=headers), 503)


def test_fail_first_zero_never_fails(client, headers):
    assert client.get(f"{WHOAMI}?status=500&fail_first=0&key=k", headers=headers).status_code == 200


def test_reset_forgets_fail_first_keys(client, headers):
    url = f"{WHOAMI}?fail_first=1&key=k"
    assert client.get(url, headers=headers).status_code == 503
    assert client.get(url, headers=headers).status_code == 200

    client.post("/sandbox/stats/reset")

    assert client.get(url, headers=headers).status_code == 503


def test_fail_rate_one_always_fails_with_503_by_default(client, headers):
    statuses = {client.get(f"{WHOAMI}?fail_rate=1", headers=headers).status_code for _ in range(10)}

    assert statuses == {503}


def test_fail_rate_uses_the_given_status(client, headers):
    assert_injected(client.get(f"{WHOAMI}?fail_rate=1&status=502", headers=headers), 502)


def test_fail_rate_zero_never_fails(client, headers):
    url = f"{WHOAMI}?fail_rate=0&status=500"

    assert {client.get(url, headers=headers).status_code for _ in range(10)} == {200}


def test_fail_rate_fails_when_the_roll_is_below_it(client, headers, monkeypatch):
    rolls = iter([0.1, 0.9])
    monkeypatch.setattr(faults._random, "random", lambda: next(rolls))

    url = f"{WHOAMI}?fail_rate=0.5"

    assert [client.get(url, headers=headers).status_code for _ in range(2)] == [503, 200]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("delay=abc", "delay"),
        ("delay=-1", "delay"),
        ("delay=61", "delay"),
        ("delay=nan", "delay"),
        ("delay=inf", "delay"),
        ("status=abc", "status"),
        ("status=99", "status"),
        ("status=600", "status"),
        ("status=5.5", "status"),
        ("fail_first=x&key=k", "fail_first"),
        ("fail_first=-1&key=k", "fail_first"),
        ("fail_first=1", "key"),
        ("fail_rate=abc", "fail_rate"),
        ("fail_rate=1.5", "fail_rate"),
        ("fail_rate=-0.1", "fail_rate"),
        ("status=503&retry_after=", "retry_after"),
        ("status=503&retry_after=%0D%0AX-Evil:%201", "retry_after"),
    ],
)
def test_bad_fault_parameter_is_a_400_naming_it(client, headers, query, parameter):
    response = client.get(f"{WHOAMI}?{query}", headers=headers)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["error"], body["parameter"]) == ("invalid_request", parameter)
    assert parameter in body["error_description"]


def test_api_checks_the_token_before_injecting(client):
    response = client.get(f"{WHOAMI}?status=503&delay=abc", headers=bearer("forged"))

    assert response.status_code == 401


def test_rejected_token_does_not_use_up_fail_first(client, headers):
    url = f"{WHOAMI}?fail_first=1&key=k"
    client.get(url, headers=bearer("forged"))

    assert client.get(url, headers=headers).status_code == 503


def test_injection_comes_before_the_method_check(client, headers):
    assert_injected(client.delete(f"{WHOAMI}?status=418", headers=headers), 418)


@pytest.mark.parametrize(
    "path", ["/sandbox/api/echo/x", "/sandbox/api/items", "/sandbox/api/items/1"]
)
def test_every_api_endpoint_honours_injection(client, headers, path):
    assert_injected(client.get(f"{path}?status=503", headers=headers), 503)


def test_token_endpoint_injects_before_authenticating(client):
    response = post_token(client, CC, authorization=basic("nobody", "wrong"), query="status=503")

    assert_injected(response, 503)


def test_token_endpoint_fail_first_then_issues_a_token(client):
    query = "status=503&fail_first=1&key=token&retry_after=1"

    first = post_token(client, CC, authorization=basic(), query=query)
    second = post_token(client, CC, authorization=basic(), query=query)

    assert_injected(first, 503)
    assert first["Retry-After"] == "1"
    assert second.status_code == 200
    assert "access_token" in second.json()


def test_token_endpoint_delays(client):
    started = time.monotonic()

    response = post_token(client, CC, authorization=basic(), query="delay=0.2")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_token_endpoint_refuses_bad_fault_parameters_first(client):
    response = post_token(client, CC, query="fail_rate=2")

    assert response.status_code == 400
    assert response.json()["parameter"] == "fail_rate"

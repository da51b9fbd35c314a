"""ApiClient against the live sandbox: calls, retries, faults, and what gets recorded."""

import uuid

import pytest

from api_client.client import ApiClient
from api_client.context import request_id_scope
from api_client.exceptions import (
    ApiConnectionError,
    ApiTimeoutError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
)
from api_client.ledger import LEDGER
from api_client.models import Exchange
from sandbox import stats


def api_exchanges():
    return Exchange.objects.filter(kind=Exchange.Kind.API)


def test_get_returns_json_and_records_one_exchange(api):
    response = api.get("echo/hello", query={"q": "1"})

    assert response.status == 200
    assert response.json()["path"].endswith("/sandbox/api/echo/hello")
    exchange = api_exchanges().get()
    assert exchange.pk == response.exchange_id
    assert (exchange.method, exchange.path, exchange.status) == ("GET", "/echo/hello?q=1", 200)
    assert exchange.attempts == 1
    assert exchange.duration_ms > 0
    assert exchange.thread
    assert '"method": "GET"' in exchange.response_body


def test_post_sends_json_and_records_the_body(api):
    response = api.post("items", json={"name": "widget", "data": {"n": 1}})

    assert response.status == 201
    assert response.json()["name"] == "widget"
    exchange = api_exchanges().get()
    assert exchange.request_headers["Content-Type"] == "application/json"
    assert '"name": "widget"' in exchange.request_body


def test_leading_slash_stays_under_the_base_url(api):
    assert api.get("/whoami").status == 200


def test_error_status_is_returned_and_raise_for_status_maps_it(api):
    response = api.get("items/999999")

    assert response.status == 404
    with pytest.raises(NotFoundError) as caught:
        response.raise_for_status()
    assert caught.value.exchange_id == response.exchange_id


def test_503_then_200_is_retried(api):
    key = uuid.uuid4().hex
    response = api.get("echo", query={"status": 503, "fail_first": 1, "key": key})

    assert response.status == 200
    assert response.attempts == 2
    assert api_exchanges().get().attempts == 2


def test_retries_stop_after_the_configured_count(configure_api):
    client = configure_api(RETRIES=2)

    response = client.get("echo", query={"status": 502})

    assert response.status == 502
    assert response.attempts == 3
    with pytest.raises(ServerError):
        response.raise_for_status()


def test_429_with_retry_after_is_honoured(api):
    key = uuid.uuid4().hex
    response = api.get("echo", query={"status": 429, "retry_after": 1, "fail_first": 1, "key": key})

    assert response.status == 200
    assert response.attempts == 2
    assert response.duration_ms >= 950  # it waited as told before the second attempt


def test_post_is_not_retried_on_503(api):
    key = uuid.uuid4().hex
    response = api.post("echo", query={"status": 503, "fail_first": 1, "key": key}, json={})

    assert response.status == 503
    assert response.attempts == 1
    assert stats.snapshot()["requests"]["by_status"].get("503") == 1


def test_read_timeout_raises_a_typed_error_and_is_recorded(configure_api):
    client = configure_api(READ_TIMEOUT=0.3, RETRIES=0)

    with pytest.raises(ApiTimeoutError) as caught:
        client.get("echo", query={"delay": 1.5})

    assert "POC_API_READ_TIMEOUT" in str(caught.value)
    exchange = api_exchanges().get()
    assert exchange.pk == caught.value.exchange_id
    assert exchange.status is None
    assert exchange.error_code == "timeout"


def test_read_timeout_of_a_get_is_retried_once(configure_api):
    client = configure_api(READ_TIMEOUT=0.3, RETRIES=3)

    with pytest.raises(ApiTimeoutError):
        client.get("echo", query={"delay": 1.5})

    assert api_exchanges().get().attempts == 2


def test_connection_refused_raises_a_typed_error_and_is_recorded(configure_api, closed_port):
    # The token endpoint is up; only the API is down.
    client = configure_api(RETRIES=2, BASE_URL=f"http://127.0.0.1:{closed_port}/")

    with pytest.raises(ApiConnectionError) as caught:
        client.get("anything")

    assert "Connection refused" in str(caught.value)
    exchange = api_exchanges().get()
    assert (exchange.status, exchange.error_code, exchange.attempts) == (
        None,
        "connection_error",
        3,
    )


def test_redirects_are_not_followed(api, live_server):
    response = api.get("echo", query={"status": 302})

    assert response.status == 302
    assert api_exchanges().count() == 1


def test_request_id_is_sent_and_recorded(api):
    with request_id_scope("req-abc-123"):
        response = api.get("echo")

    assert response.json()["headers"]["X-Request-Id"] == "req-abc-123"
    assert api_exchanges().get().request_id == "req-abc-123"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "BREW", "path": "echo"}, "method"),
        ({"method": "GET", "path": "http://evil.example/"}, "path"),
        ({"method": "GET", "path": "//evil.example/x"}, "path"),
        ({"method": "GET", "path": "../oauth/token"}, "path"),
        ({"method": "GET", "path": "items/%2e%2e/%2E%2E/admin"}, "path"),
        ({"method": "GET", "path": "items/%252e%252e/x"}, "path"),
        ({"method": "GET", "path": "items\\..\\x"}, "path"),
        ({"method": "GET", "path": "items/%5c..%5cx"}, "path"),
        ({"method": "GET", "path": "echo\r\nX: y"}, "path"),
        ({"method": "GET", "path": "echo", "headers": {"Authorization": "Bearer x"}}, "headers"),
        ({"method": "GET", "path": "echo", "headers": {"X-A": "1\r\nX-B: 2"}}, "headers"),
        ({"method": "GET", "path": "echo", "headers": {"Bad Name": "1"}}, "headers"),
        ({"method": "GET", "path": "echo", "query": {"a": {"b": 1}}}, "query"),
        ({"method": "GET", "path": "echo", "json": {"a": 1}}, "json"),
        ({"method": "POST", "path": "echo", "json": {"x": float("nan")}}, "json"),
        ({"method": "POST", "path": "echo", "json": "x" * 1_000_001}, "json"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(configure_api, closed_port, kwargs, field):
    # Nothing listens there: any attempt to send (even for a token) would fail differently.
    nowhere = f"http://127.0.0.1:{closed_port}"
    client = configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token")
    method = kwargs.pop("method")
    path = kwargs.pop("path")

    with pytest.raises(InvalidRequestError) as caught:
        client.request(method, path, **kwargs)

    assert caught.value.field == field
    assert Exchange.objects.count() == 0


def test_a_failure_to_record_the_end_of_a_call_never_hides_its_result(api, monkeypatch, caplog):
    def broken_complete(*args, **kwargs):
        raise RuntimeError("disk full")

    api.get("whoami")
    monkeypatch.setattr(Exchange.objects, "complete", broken_complete)

    response = api.get("whoami")

    assert response.status == 200
    LEDGER.flush()  # the completion is written after the call returns
    assert "Could not record the exchange for GET /whoami: disk full" in caplog.text
    # The call is on record as it left, pending; once it should have settled, it shows unknown.
    assert Exchange.objects.get(pk=response.exchange_id).state == "pending"


def test_client_is_usable_from_a_fresh_instance_per_call(api_config):
    for _ in range(3):
        client = ApiClient(api_config)
        assert client.get("whoami").ok
        client.close()
    assert stats.grant_count() == 1

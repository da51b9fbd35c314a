"""Faults on the far side: the API stops mid-batch, resets connections, answers too slowly or
with random 503s, the token endpoint fails or hangs. Whatever happens, every call ends with a
result and an ``Exchange`` that says what happened to it, no worker thread is left behind,
and the same client goes on working once the fault is gone.
"""

import re
from collections import Counter

import pytest

from api_client.client import ApiClient
from api_client.exceptions import (
    ApiConnectionError,
    ApiTimeoutError,
    TokenEndpointError,
    TokenError,
)
from api_client.models import Exchange
from bench.common import free_port, stub_api
from sandbox import stats
from tests.helpers.waiting import sandbox_requests_once_answered, worker_threads_left

pytestmark = pytest.mark.django_db(transaction=True)


def api_exchanges():
    return Exchange.objects.filter(kind=Exchange.Kind.API)


def assert_every_result_is_recorded(results, batch_id: str) -> None:
    """One result per call, each with exactly one outcome and the exchange that records it."""
    assert all((r.response is None) != (r.error is None) for r in results)
    rows = {row.pk: row for row in api_exchanges().filter(batch_id=batch_id)}
    assert len(rows) == len(results)
    assert {r.exchange_id for r in results} == set(rows)
    for result in results:
        row = rows[result.exchange_id]
        if result.response is not None:
            assert (row.status, row.error_code) == (result.status, "")
        else:
            assert (row.status, row.error_code) == (None, result.error.code)
            assert row.error == result.error.message


@pytest.fixture
def stub_client(api_config):
    """A client for an API served by bench/stub_api.py in its own process on a fixed port, so
    that a test can kill it and start it again at the same address."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    client = ApiClient(
        api_config.with_overrides(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token", RETRIES=2)
    )
    yield client, port
    client.close()


def test_api_server_stopped_mid_batch(stub_client):
    client, port = stub_client
    calls = [{"method": "GET", "path": f"slow/{n}", "query": {"delay": 0.05}} for n in range(120)]
    results = []

    with stub_api(port):
        client.get("warm-up")  # the token, from the same server
        batch = client.iter_many(calls, concurrency=8, batch_id="stopped")
        for result in batch:
            results.append(result)
            if len(results) == 30:
                break  # leave the loop with calls in flight; the server dies at once
    # Python's `with` killed the server while 8 workers had calls in flight.
    results.extend(batch)

    assert len(results) == 120
    outcomes = Counter("ok" if r.ok else type(r.error).__name__ for r in results)
    assert outcomes["ok"] >= 30
    assert outcomes["ApiConnectionError"] >= 40
    assert set(outcomes) <= {"ok", "ApiConnectionError"}
    assert_every_result_is_recorded(results, "stopped")
    assert worker_threads_left() == []

    with stub_api(port):  # the API is back: the same client recovers, dead connections and all
        assert [r.status for r in client.request_many(calls[:20], concurrency=8)] == [200] * 20


def test_connection_resets_are_recorded_and_do_not_poison_the_pool(stub_client):
    client, port = stub_client
    resets = [n // 2 % 2 == 1 for n in range(40)]  # GET, POST, GET reset, POST reset, ...
    calls = [
        {"method": "POST" if n % 2 else "GET", "path": "x", "query": {"reset": 1} if reset else {}}
        for n, reset in enumerate(resets)
    ]

    with stub_api(port):
        results = client.request_many(calls, concurrency=8, batch_id="resets")
        after = client.request_many(calls[:2] * 10, concurrency=8)

    assert_every_result_is_recorded(results, "resets")
    for result, reset in zip(results, resets, strict=True):
        if reset:
            assert isinstance(result.error, ApiConnectionError)
            # The kernel reports the RST as a reset, or as a close when it beats the read.
            assert re.search("reset by peer|closed the connection", result.error.message)
            assert "the API may have received the request" in result.error.message
        else:
            assert result.status == 200
    rows = api_exchanges().filter(batch_id="resets", error_code="connection_error")
    # A reset GET was retried once (a read error), a reset POST never (it may have been acted on).
    assert sorted(set(rows.values_list("method", "attempts"))) == [("GET", 2), ("POST", 1)]
    assert [r.status for r in after] == [200] * 20
    assert worker_threads_left() == []


def test_responses_slower_than_the_read_timeout(configure_api):
    client = configure_api(READ_TIMEOUT=0.3, RETRIES=1)
    client.get("whoami")
    stats.reset()
    calls = [{"method": "GET", "path": "echo", "query": {"delay": n % 2}} for n in range(8)]

    results = client.request_many(calls, concurrency=8, batch_id="slow")

    assert_every_result_is_recorded(results, "slow")
    assert [r.status for r in results[::2]] == [200] * 4
    assert all(isinstance(r.error, ApiTimeoutError) for r in results[1::2])
    assert all("POC_API_READ_TIMEOUT" in r.error.message for r in results[1::2])
    assert worker_threads_left() == []
    # A timed-out GET was tried twice: 4 + 4 x 2 requests, all of them answered in the end.
    assert sandbox_requests_once_answered(12)["total"] == 12
    assert client.get("whoami").ok


def test_30_percent_random_503s_every_attempt_is_accounted_for(configure_api):
    client = configure_api(RETRIES=3)
    client.get("whoami")  # the token first, so that the sandbox counts only API calls below
    stats.reset()
    calls = [
        {"method": "GET" if n % 3 else "POST", "path": "echo", "query": {"fail_rate": 0.3}}
        for n in range(150)
    ]

    results = client.request_many(calls, concurrency=8, batch_id="flaky")

    assert_every_result_is_recorded(results, "flaky")
    assert all(r.error is None for r in results)  # a 503 is an answer, not an error
    assert {r.status for r in results} <= {200, 503}
    rows = api_exchanges().filter(batch_id="flaky")
    # Every request the sandbox served is one attempt of one recorded call.
    served = stats.snapshot()["requests"]
    assert sum(row.attempts for row in rows) == served["total"]
    assert served["by_status"].get("503", 0) == sum(
        row.attempts - (row.status == 200) for row in rows
    )
    # POSTs are never retried (they may have been acted on); GETs up to three times.
    assert {row.attempts for row in rows if row.method == "POST"} == {1}
    assert {row.attempts for row in rows if row.method == "GET"} <= {1, 2, 3, 4}
    assert any(row.attempts > 1 for row in rows)
    assert any(row.status == 503 for row in rows if row.method == "POST")
    assert worker_threads_left() == []


@pytest.mark.parametrize(
    ("token_query", "overrides", "message"),
    [
        pytest.param("status=500", {}, "answered 500", id="500"),
        # When it finally answers, it answers 500: no grant lands after the test is over.
        pytest.param(
            "delay=2&status=500", {"READ_TIMEOUT": 0.3}, "did not answer within", id="hanging"
        ),
    ],
)
def test_failing_token_endpoint_fails_the_batch_once(
    configure_api, sandbox_root, token_query, overrides, message
):
    client = configure_api(TOKEN_URL=f"{sandbox_root}oauth/token?{token_query}", **overrides)
    calls = [{"method": "GET", "path": "whoami"} for _ in range(40)]

    results = client.request_many(calls, concurrency=8, batch_id="no-token")

    assert_every_result_is_recorded(results, "no-token")
    assert all(isinstance(r.error, TokenError) for r in results)
    assert all(message in r.error.message for r in results)
    # Asked once for the whole batch: later items share the failure rather than each trying
    # (and, when the endpoint hangs, each waiting out the timeout) again.
    assert Exchange.objects.filter(kind=Exchange.Kind.TOKEN).count() == 1
    assert sandbox_requests_once_answered(1) == {"total": 1, "by_status": {"500": 1}}
    assert api_exchanges().filter(attempts=0).count() == 40  # none of them was sent
    assert worker_threads_left() == []


def test_a_single_call_after_a_failed_batch_asks_for_a_token_again(configure_api, sandbox_root):
    broken = configure_api(TOKEN_URL=f"{sandbox_root}oauth/token?status=500")
    broken.request_many([{"method": "GET", "path": "whoami"}] * 4, concurrency=2)

    with pytest.raises(TokenEndpointError) as caught:
        broken.get("whoami")

    assert caught.value.exchange_id == api_exchanges().latest("id").pk
    assert Exchange.objects.filter(kind=Exchange.Kind.TOKEN).count() == 2
    fixed = configure_api(TOKEN_URL=f"{sandbox_root}oauth/token")
    assert fixed.get("whoami").ok

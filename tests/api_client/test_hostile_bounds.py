"""A hostile API cannot exhaust the client: memory, time and calls in flight stay bounded,
and odd bodies are returned and recorded, never a crash (tests/helpers/hostile.py)."""

import logging
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

from api_client.client import ApiClient
from api_client.exceptions import (
    ApiConnectionError,
    ApiTimeoutError,
    ResponseTooLargeError,
    RetryLaterError,
)
from api_client.models import Exchange
from tests.helpers.processes import ROOT, database_url_for_subprocess
from tests.helpers.sockets import sockets_to

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1_000_000
CAP = 10 * MB  # POC_API_MAX_RESPONSE_BYTES's default


def peak_allocated(run) -> tuple[object, int]:
    """``run()``'s result (or the exception it raised) and the most memory Python held above
    what it held before, in bytes."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            result = run()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


# --- response size -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["bomb?mb=200", "bomb?mb=200&encoding=deflate", "huge?mb=500", "huge?mb=500&chunked=1"],
)
def test_a_body_past_the_cap_stops_the_read_and_keeps_its_first_part(hostile_client, path):
    error, peak = peak_allocated(lambda: hostile_client.get(path))

    assert isinstance(error, ResponseTooLargeError)
    assert "POC_API_MAX_RESPONSE_BYTES" in error.message
    assert peak < 3 * CAP  # not 200 MB, let alone 500
    exchange = Exchange.objects.get(pk=error.exchange_id)
    assert exchange.status == 200
    assert exchange.error_code == "response_too_large"
    assert exchange.response_headers["Content-Type"] == "application/json"
    assert 0 < len(exchange.response_body) <= hostile_client.config.LOG_BODY_LIMIT


def test_a_bomb_in_gzip_in_gzip_is_counted_after_decompression(hostile_client, hostile):
    error, _ = peak_allocated(lambda: hostile_client.get("bomb?mb=200&encoding=gzip,gzip"))

    assert isinstance(error, ResponseTooLargeError)
    assert "after decompression" in error.message
    assert hostile.received[-1].path.startswith("/api/bomb")


def test_sixteen_bombs_in_one_batch_add_at_most_sixteen_caps(hostile_client):
    calls = [{"method": "GET", "path": "bomb", "query": {"mb": 200, "n": n}} for n in range(16)]

    results, peak = peak_allocated(lambda: hostile_client.request_many(calls, concurrency=16))

    assert [type(r.error) for r in results] == [ResponseTooLargeError] * 16
    assert peak < 16 * CAP + 20 * MB
    assert Exchange.objects.filter(error_code="response_too_large").count() == 16


def test_a_body_under_the_cap_is_read_whole(hostile_config):
    client = hostile_config(MAX_RESPONSE_BYTES=3 * MB)

    response = client.get("huge", query={"mb": 2})

    assert len(response.content) == 2 * 2**20


def test_a_commands_peak_memory_stays_near_its_baseline_on_a_bomb(hostile, tmp_path):
    """``manage.py api_request`` in its own process: its peak RSS on a 200 MB bomb and on a
    plain answer differ by little more than the cap."""
    environ = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "POC_API_BASE_URL": f"{hostile.url}/api/",
        "POC_API_TOKEN_URL": f"{hostile.url}/oauth/token",
        "POC_API_CLIENT_ID": "hostile-client",
        "POC_API_CLIENT_SECRET": "hostile-secret-0123456789",
        "DJANGO_LOG_LEVEL": "WARNING",
    }

    def peak_rss(path: str) -> tuple[int, str]:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "api_request", "GET", path],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, _, usage = os.wait4(process.pid, 0)
        err = process.stderr.read().decode()
        process.stderr.close()
        return usage.ru_maxrss * 1024, err

    baseline, _ = peak_rss("slow")
    bombed, err = peak_rss("bomb?mb=200&encoding=gzip,gzip")

    assert "POC_API_MAX_RESPONSE_BYTES" in err
    assert bombed - baseline < 3 * CAP


# --- a deadline for the whole call -------------------------------------------------------------


@pytest.mark.parametrize("path", ["drip-body?interval=0.5", "drip-headers?interval=0.5"])
def test_a_drip_ends_at_the_deadline_not_at_the_read_timeout(hostile_config, path):
    client = hostile_config(DEADLINE=2, READ_TIMEOUT=30)
    started = time.monotonic()

    with pytest.raises(ApiTimeoutError) as caught:
        client.get(path)

    assert time.monotonic() - started < 30  # each byte came within the read timeout
    assert "POC_API_DEADLINE" in caught.value.message
    exchange = Exchange.objects.get(pk=caught.value.exchange_id)
    assert exchange.error_code == "timeout"
    assert exchange.attempts >= 1


def test_the_deadline_is_named_as_the_connection_has_it(hostile_config):
    config = hostile_config(DEADLINE=1, READ_TIMEOUT=30).config
    client = ApiClient(config.with_overrides(NAME="partner"))

    with pytest.raises(ApiTimeoutError) as caught:
        client.get("drip-body?interval=0.4")
    client.close()

    assert "(the connection 'partner': deadline)" in caught.value.message


def test_a_drip_is_cut_on_a_connection_reused_from_the_pool(hostile_config, hostile):
    client = hostile_config(DEADLINE=2, READ_TIMEOUT=30)
    client.get("slow")  # leaves a keep-alive connection in the pool

    with pytest.raises(ApiTimeoutError):
        client.get("drip-body", query={"interval": 0.5})

    assert client.get("slow").status == 200  # and the pool still serves


def test_a_retry_after_longer_than_the_deadline_fails_at_once_saying_when(hostile_config):
    client = hostile_config(RETRIES=3, DEADLINE=5, RETRY_AFTER_MAX=60)
    started = time.monotonic()

    with pytest.raises(RetryLaterError) as caught:
        client.get("too-many", query={"seconds": 3600})

    assert time.monotonic() - started < 5  # it did not wait an hour, nor the deadline
    assert caught.value.retry_after == 3600
    assert "3600 s" in caught.value.message
    exchange = Exchange.objects.get(pk=caught.value.exchange_id)
    assert (exchange.status, exchange.error_code, exchange.attempts) == (429, "retry_later", 1)


def test_a_retry_after_longer_than_retry_after_max_is_not_slept_on(hostile_config, hostile):
    client = hostile_config(RETRIES=3, RETRY_AFTER_MAX=3)

    with pytest.raises(RetryLaterError):
        client.get("status", query={"code": 503, "retry_after": 10})

    assert len(hostile.received) == 2  # the token request and one call: no retry slept on


def test_a_malformed_retry_after_is_ignored_rather_than_crashing(hostile_config, hostile):
    client = hostile_config(RETRIES=1)

    response = client.get("status", query={"code": 503, "retry_after": "9" * 5000})

    assert (response.status, response.attempts) == (503, 2)


def test_a_retried_answer_is_not_read_to_its_end(hostile_config, hostile):
    """urllib3 drains a response before retrying; a 500 MB 503 must not be read thrice."""
    client = hostile_config(RETRIES=2, DEADLINE=20)

    with pytest.raises(ResponseTooLargeError):
        client.get("huge", query={"mb": 500, "status": 503})

    assert len(hostile.received) >= 2


# --- calls in flight per process ------------------------------------------------------------


def test_twenty_batches_at_once_stay_within_the_process_bound(hostile_config, hostile, caplog):
    client = hostile_config(MAX_WORKERS=8)
    port = int(hostile.url.rsplit(":", 1)[1])
    calls = [{"method": "GET", "path": "slow", "query": {"delay": 0.01}} for _ in range(100)]
    client.get("slow")  # the token, once
    threads_before = threading.active_count()
    peaks = {"threads": 0, "sockets": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peaks["threads"] = max(peaks["threads"], threading.active_count())
            peaks["sockets"] = max(peaks["sockets"], sockets_to(port, established_only=False))
            time.sleep(0.01)

    results: list = []
    batches = [
        threading.Thread(target=lambda: results.extend(client.request_many(calls)))
        for _ in range(20)
    ]
    watcher = threading.Thread(target=watch)
    watcher.start()
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        for thread in batches:
            thread.start()
        for thread in batches:
            thread.join()
    done.set()
    watcher.join()

    assert len(results) == 2000 and all(r.ok for r in results)
    # the 20 callers, the watcher, 8 workers, and the batches' exchange writers
    assert peaks["threads"] - threads_before <= 8 + 20 + 1 + 20 + 2
    assert peaks["sockets"] <= 8 + 1  # the API's connections, and the token endpoint's
    assert "Connection pool is full" not in caplog.text


# --- deep and odd bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("deep-json?depth=5000", "[[[[["),
        ("invalid-utf8", "\ufffd"),
        ("nul", "\\u0000"),
        ("nul?raw=1", "\ufffd"),
    ],
)
def test_odd_bodies_are_returned_and_recorded(hostile_client, path, expected):
    response = hostile_client.get(path)

    assert response.status == 200
    exchange = Exchange.objects.get(pk=response.exchange_id)
    assert expected in exchange.response_body
    assert "\x00" not in exchange.response_body


def test_a_100000_character_header_is_a_recorded_failure_not_a_crash(hostile_client):
    with pytest.raises(ApiConnectionError) as caught:
        hostile_client.get("long-header", query={"length": 100_000})

    exchange = Exchange.objects.get(pk=caught.value.exchange_id)
    assert "65536" in exchange.error
    assert hostile_client.get("slow").status == 200


def test_a_long_header_value_is_stored_cut(hostile_client):
    response = hostile_client.get("long-header", query={"length": 60_000})

    stored = Exchange.objects.get(pk=response.exchange_id).response_headers["X-Long"]
    assert len(response.headers["X-Long"]) == 60_000
    assert len(stored) < 9_000 and stored.endswith("(60000 characters)")

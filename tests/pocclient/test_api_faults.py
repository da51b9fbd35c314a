"""The console keeps serving through faults on the far side and a locked database.

Each test breaks something (the API stops mid-batch, answers too slowly, resets, fails at
random; the token endpoint fails or hangs; another process holds the database's write
lock), checks that the answer says clearly what happened and that every call is in the
exchange log, then checks that the next request is served as if nothing had happened.
"""

import json

import pytest
from django.utils import timezone

from api_client import tokens
from api_client.models import Exchange, Token
from bench.common import free_port, stub_api
from sandbox import stats
from tests.helpers.processes import write_lock_held_by_another_process, writers_give_up_after
from tests.helpers.waiting import sandbox_requests_once_answered, worker_threads_left

from .helpers import ndjson

LOCK_WAIT_MESSAGES = ("database is locked", "lock timeout")


def echo(**changes):
    return {"method": "GET", "path": "echo", **changes}


def assert_serving(console) -> None:
    """The console answers a plain call and a token refresh as usual."""
    sent = console.post_json("/api/send", echo())
    assert sent.status_code == 200, sent.content[:500]
    assert sent.json()["id"] == Exchange.objects.filter(kind="api").latest("id").pk
    assert console.post_json("/_token_refresh", {}).status_code == 200


def test_api_stopped_mid_batch_every_item_is_answered_and_recorded(
    console, configure_api, job_worker
):
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    configure_api(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token", RETRIES=1)
    calls = [{"method": "GET", "path": f"slow/{n}", "query": {"delay": "0.05"}} for n in range(60)]

    with stub_api(port):
        response = console.post_json("/api/batch", {"requests": calls, "concurrency": 8})
        lines = iter(response.streaming_content)
        first = [json.loads(next(lines)) for _ in range(15)]
    # The API died with calls in flight; the rest of the stream comes from a dead server.
    *items, last = first + [json.loads(line) for line in lines]

    summary = last["summary"]
    assert (summary["total"], summary["done"], summary["aborted"]) == (60, 60, None)
    assert summary["ok"] >= 15
    assert set(summary["by_error"]) == {"connection_error"}
    assert summary["ok"] + summary["by_error"]["connection_error"] == 60
    recorded = Exchange.objects.filter(batch_id=summary["batch_id"])
    assert sorted(recorded.values_list("pk", flat=True)) == sorted(i["exchange_id"] for i in items)
    assert worker_threads_left() == []
    with stub_api(port):
        assert console.post_json("/api/send", {"method": "GET", "path": "x"}).json()["ok"]


def test_connection_reset_is_a_502_that_says_so(console, configure_api):
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    configure_api(BASE_URL=f"{root}/api/", TOKEN_URL=f"{root}/token")

    with stub_api(port):
        reset = console.post_json("/api/send", {"method": "POST", "path": "x?reset=1"})
        after = console.post_json("/api/send", {"method": "POST", "path": "x"})

    assert reset.status_code == 502
    error = reset.json()["error"]
    assert error["code"] == "connection_error"
    assert "reset by peer" in error["message"] or "closed the connection" in error["message"]
    assert Exchange.objects.get(pk=reset.json()["id"]).error_code == "connection_error"
    assert after.status_code == 200


@pytest.mark.parametrize(
    ("settings_", "call", "status", "code", "sandbox_requests"),
    [
        pytest.param(
            {"READ_TIMEOUT": 0.3, "RETRIES": 0},
            echo(query={"delay": "1"}),
            504,
            "timeout",
            2,  # the token, then the call that timed out
            id="slower-than-the-read-timeout",
        ),
        pytest.param(
            {"TOKEN_PATH": "oauth/token?status=500"},
            echo(),
            502,
            "token_endpoint_error",
            1,
            id="token-endpoint-500",
        ),
        pytest.param(
            {"TOKEN_PATH": "oauth/token?delay=1&status=500", "READ_TIMEOUT": 0.3},
            echo(),
            502,
            "token_endpoint_error",
            1,
            id="token-endpoint-hanging",
        ),
    ],
)
def test_a_fault_is_answered_clearly_and_the_next_call_is_served(
    console,
    configure_api,
    api_config,
    sandbox_root,
    settings_,
    call,
    status,
    code,
    sandbox_requests,
):
    changes = dict(settings_)
    if "TOKEN_PATH" in changes:
        changes["TOKEN_URL"] = sandbox_root + changes.pop("TOKEN_PATH")

    configure_api(**changes)
    response = console.post_json("/api/send", call)

    assert response.status_code == status
    data = response.json()
    assert data["error"]["code"] == code
    assert Exchange.objects.get(pk=data["id"]).error_code == code
    sandbox_requests_once_answered(sandbox_requests)  # what slept in the sandbox has answered
    configure_api(**{name: getattr(api_config, name) for name in (*changes, "TOKEN_URL")})
    assert_serving(console)


def test_30_percent_503s_in_a_batch_are_counted_and_recorded(console, api_config, job_worker):
    calls = [echo(query={"fail_rate": "0.3"})] * 20 + [
        echo(method="POST", query={"fail_rate": "0.3"}, json={}) for _ in range(20)
    ]

    last = ndjson(console.post_json("/api/batch", {"requests": calls, "concurrency": 8}))[-1]

    summary = last["summary"]
    assert summary["done"] == summary["total"] == 40
    assert summary["errors"] == 0  # a 503 is an answer, not an error
    assert set(summary["by_status"]) <= {"200", "503"}
    assert sum(summary["by_status"].values()) == 40
    assert Exchange.objects.filter(batch_id=summary["batch_id"]).count() == 40
    assert worker_threads_left() == []
    assert_serving(console)


# --- another process holds the database's write lock ---------------------------------------


@pytest.fixture
def locked_out(console, api_config):
    """The console has a token; its own writers give up after half a second."""
    assert console.post_json("/api/send", echo()).status_code == 200
    with writers_give_up_after(0.5):
        yield


def test_a_call_that_cannot_be_recorded_first_is_not_sent_and_is_a_503(console, locked_out, caplog):
    recorded = Exchange.objects.count()
    served = stats.snapshot()["requests"]["total"]

    with write_lock_held_by_another_process():
        response = console.post_json("/api/send", echo())

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    data = response.json()
    assert data["error"]["code"] == "not_recorded" and data["id"] is None
    assert "could not record the call" in data["error"]["message"]
    assert stats.snapshot()["requests"]["total"] == served  # nothing reached the API
    assert "Could not record the exchange for GET /echo" in caplog.text
    assert any(text in caplog.text for text in LOCK_WAIT_MESSAGES)
    assert Exchange.objects.count() == recorded
    assert_serving(console)


def test_a_call_that_needs_a_token_while_locked_is_a_clear_502(console, locked_out):
    Token.objects.update(expires_at=timezone.now())
    tokens.clear_cache()
    before = Token.objects.values().get()

    with write_lock_held_by_another_process():
        response = console.post_json("/api/send", echo())

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "token_storage_error"
    assert "database is busy" in error["message"] and "nothing was sent" in error["message"]
    assert Token.objects.values().get() == before  # no lease left behind
    assert_serving(console)


def test_a_token_refresh_while_locked_is_a_503_to_try_again(console, locked_out):
    before = Token.objects.values().get()

    with write_lock_held_by_another_process():
        response = console.post_json("/_token_refresh", {"force": True})

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "try again" in response.json()["error"]["message"]
    assert Token.objects.values().get() == before
    assert_serving(console)

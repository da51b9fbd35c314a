"""The console's JSON endpoints through Django's test client, with CSRF checks on."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from api_client.models import Exchange, Token
from jobs.models import Item, Job
from sandbox import stats
from tests.helpers.waiting import settled

from .helpers import ndjson

POST_ENDPOINTS = ["/_token_refresh", "/api/send", "/api/batch", "/api/jobs", "/api/jobs/1/cancel"]
GET_ENDPOINTS = [
    "/api/token",
    "/api/exchanges",
    "/api/exchanges/1",
    "/api/jobs",
    "/api/jobs/1",
    "/api/jobs/1/results",
]


def echo(**changes):
    return {"method": "GET", "path": "echo", **changes}


# --- authentication, CSRF, methods ----------------------------------------------------------


@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_anonymous_get_is_401_json_not_a_redirect(anonymous, path):
    response = anonymous.get(path)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "Location" not in response
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.json()["login_url"] == "/accounts/login/"


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_anonymous_post_with_csrf_token_is_401_json(anonymous, nowhere, path):
    response = anonymous.post_json(path, {})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert Exchange.objects.count() == 0


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_anonymous_post_without_csrf_token_is_403_json(anonymous, path):
    response = anonymous.post_json(path, {}, csrf=False)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "csrf_failed"


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_post_without_csrf_token_is_refused_before_anything_is_sent(console, nowhere, path):
    response = console.post_json(path, {"requests": [echo()], **echo()}, csrf=False)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert "X-CSRFToken" in response.json()["error"]["message"]
    assert Exchange.objects.count() == 0


def test_post_with_a_wrong_csrf_token_is_refused(console, nowhere):
    console.csrf_token()
    response = console.post(
        "/api/send", json.dumps(echo()), "application/json", headers={"X-CSRFToken": "x" * 32}
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/send"), ("get", "/_token_refresh"), ("post", "/api/exchanges")],
)
def test_wrong_method_is_405_json_with_allow(console, method, path):
    response = getattr(console, method)(path, headers={"X-CSRFToken": console.csrf_token()})

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] in ("GET", "POST")


def test_unknown_api_path_is_404_json(console):
    response = console.get("/api/nothing/here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- POST /api/send -------------------------------------------------------------------------


def test_send_returns_the_exchange_summary(console, api_config):
    response = console.post_json(
        "/api/send",
        {
            "method": "POST",
            "path": "echo/hello",
            "query": {"q": "1", "tag": ["a", "b"]},
            "headers": {"X-Trace": "t-1"},
            "json": {"name": "widget", "n": [1, 2]},
        },
    )

    assert response.status_code == 200
    data = response.json()
    exchange = Exchange.objects.get(kind=Exchange.Kind.API)
    assert data["id"] == exchange.pk
    assert data["status"] == 200 and data["ok"] is True
    assert data["duration_ms"] > 0 and data["attempts"] == 1
    assert data["path"] == "/echo/hello?q=1&tag=a&tag=b"
    assert data["body_is_json"] is True
    assert data["body"]["json"] == {"name": "widget", "n": [1, 2]}
    assert data["body"]["query"] == {"q": ["1"], "tag": ["a", "b"]}
    assert data["body"]["headers"]["X-Trace"] == "t-1"
    assert data["headers"]["Content-Type"] == "application/json"
    assert data["admin_url"] == f"/admin/api_client/exchange/{exchange.pk}/change/"


def test_send_answers_200_with_the_apis_error_status(console, api_config):
    data = console.post_json("/api/send", echo(path="items/999999")).json()

    assert (data["status"], data["ok"]) == (404, False)
    assert data["body"]["error"] == "not_found"


def test_send_with_an_empty_object_body_sends_it(console, api_config):
    data = console.post_json("/api/send", {"method": "PUT", "path": "echo", "json": {}}).json()

    assert data["body"]["json"] == {}


def test_unreachable_api_is_502_with_the_recorded_exchange(console, configure_api, closed_port):
    configure_api(BASE_URL=f"http://127.0.0.1:{closed_port}/api/", RETRIES=0)

    response = console.post_json("/api/send", echo())

    assert response.status_code == 502
    data = response.json()
    assert data["error"]["code"] == "connection_error"
    assert "Connection refused" in data["error"]["message"]
    assert data["id"] == Exchange.objects.get(kind=Exchange.Kind.API).pk


def test_api_timeout_is_504(console, configure_api):
    configure_api(READ_TIMEOUT=0.2, RETRIES=0)

    response = console.post_json("/api/send", echo(query={"delay": "1"}))

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


def test_token_failure_is_502_and_nothing_reaches_the_api(console, configure_api):
    configure_api(CLIENT_SECRET="wrong-secret-value")

    response = console.post_json("/api/send", echo())

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "invalid_client"
    # The call is in the log with the reason it was never sent.
    call = Exchange.objects.get(kind=Exchange.Kind.API)
    assert (call.attempts, call.status, call.error_code) == (0, None, "invalid_client")
    assert response.json()["id"] == call.pk
    assert "wrong-secret-value" not in response.content.decode()


def test_send_never_returns_a_secret_the_api_echoes(console, api_config):
    console.post_json("/api/send", echo())
    token = Token.objects.get()

    # The echo endpoint sends the body back: an API that echoes our token or secret.
    response = console.post_json(
        "/api/send",
        echo(method="POST", json={"t": token.access_token, "s": api_config.CLIENT_SECRET}),
    )

    body = response.content.decode()
    assert token.access_token not in body
    assert api_config.CLIENT_SECRET not in body
    assert response.json()["body"]["json"] == {"t": "[redacted]", "s": "[redacted]"}


# --- bad input -------------------------------------------------------------------------------

TOO_MANY_HEADERS = {f"X-H{n}": "v" for n in range(51)}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"method": "GET"}, "path"),
        (echo(method="FETCH"), "method"),
        (echo(method=7), "method"),
        (echo(path="../token"), "path"),
        (echo(path="http://evil.example/"), "path"),
        (echo(path="//evil.example/x"), "path"),
        (echo(path="%2e%2e/x"), "path"),
        (echo(path=["echo"]), "path"),
        (echo(headers={"Authorization": "Bearer mine"}), "headers"),
        (echo(headers={"authorization": "x"}), "headers"),
        (echo(headers={"Cookie": "a=b"}), "headers"),
        (echo(headers=TOO_MANY_HEADERS), "headers"),
        (echo(headers={"X-Big": "v" * 9000}), "headers"),
        (echo(headers={"Bad Name": "v"}), "headers"),
        (echo(headers={"X-Split": "a\r\nInjected: 1"}), "headers"),
        (echo(headers=["X-A"]), "headers"),
        (echo(query="a=1"), "query"),
        (echo(query={"a": {"nested": 1}}), "query"),
        (echo(json={"a": 1}), "json"),  # a GET cannot have a body
        (echo(method="POST", json="x" * 1_000_001), "json"),
        (echo(body={"a": 1}), "__all__"),  # unknown field
    ],
)
def test_bad_send_input_is_400_per_field_and_nothing_is_sent(console, nowhere, payload, field):
    response = console.post_json("/api/send", payload)

    assert response.status_code == 400
    data = response.json()
    assert data["error"]["code"] == "invalid"
    assert list(data["errors"]) == [field]
    assert Exchange.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"method": "GET", "path": NaN}', b"[1, 2]", b'"GET"', b"\xff\xfe"],
)
def test_a_body_that_is_not_a_json_object_is_400(console, nowhere, raw):
    response = console.post_json("/api/send", raw=raw)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["__all__"]
    assert Exchange.objects.count() == 0


def test_a_body_over_the_upload_limit_is_413(console, nowhere, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = console.post_json("/api/send", echo(method="POST", json="x" * 2000))

    assert response.status_code == 413
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["errors"]["__all__"][0]


# --- POST /api/batch --------------------------------------------------------------------------


def test_batch_streams_a_line_per_item_then_a_summary(console, api_config, job_worker):
    requests = [echo(), echo(path="whoami"), echo(path="items/999999"), echo(query={"status": 500})]

    response = console.post_json("/api/batch", {"requests": requests, "concurrency": 2})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response.streaming
    *items, last = ndjson(response)
    assert sorted(item["index"] for item in items) == [0, 1, 2, 3]
    by_index = {item["index"]: item for item in items}
    assert [by_index[n]["status"] for n in range(4)] == [200, 200, 404, 500]
    assert set(by_index[0]) == {"index", "status", "ok", "duration_ms", "exchange_id", "error"}
    assert all(item["error"] is None and item["duration_ms"] > 0 for item in items)
    summary = last["summary"]
    assert (summary["total"], summary["done"], summary["ok"], summary["failed"]) == (4, 4, 2, 2)
    assert summary["by_status"] == {"200": 2, "404": 1, "500": 1}
    assert summary["concurrency"] == 2
    latency = summary["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p95"] <= latency["max"]
    assert sum(summary["histogram"]["counts"]) == 4
    recorded = Exchange.objects.filter(batch_id=summary["batch_id"])
    assert sorted(recorded.values_list("pk", flat=True)) == sorted(
        item["exchange_id"] for item in items
    )
    assert summary["exchanges_url"] == f"/admin/api_client/exchange/?batch_id={summary['batch_id']}"
    # The batch is a job, made by the console's user; its calls' exchanges carry its key.
    job = Job.objects.get(key=summary["batch_id"])
    assert (job.origin, job.created_by, job.state, job.total) == (
        "console",
        "engineer",
        "finished",
        4,
    )
    assert response["X-Job-Key"] == job.key == summary["job"]
    assert summary["url"] == response["X-Job-URL"] == f"/api/jobs/{job.key}"
    assert summary["state"] == "finished" and summary["cancelled"] == 0


def test_batch_lines_come_in_the_order_calls_finish(console, api_config, job_worker):
    requests = [echo(query={"delay": "0.5"}), echo()]

    lines = ndjson(console.post_json("/api/batch", {"requests": requests, "concurrency": 2}))

    assert [line.get("index") for line in lines[:2]] == [1, 0]


def test_batch_items_that_fail_carry_their_error(console, configure_api, closed_port, job_worker):
    configure_api(BASE_URL=f"http://127.0.0.1:{closed_port}/api/", RETRIES=0)

    *items, last = ndjson(console.post_json("/api/batch", {"requests": [echo(), echo()]}))

    assert {item["error"]["code"] for item in items} == {"connection_error"}
    assert all(item["status"] is None and item["exchange_id"] for item in items)
    assert last["summary"]["by_error"] == {"connection_error": 2}
    assert last["summary"]["latency_ms"] is None


def test_batch_calls_carry_the_job_and_their_place_in_it(console, api_config, job_worker):
    # A job's calls are sent by a worker, not in the page's request: they carry the job's key
    # (batch_id) and their place in it (reference), not the page's request id (as they did
    # when the batch ran inside the request).
    response = console.post_json(
        "/api/batch",
        {"requests": [echo(), echo()]},
        headers={"X-Request-ID": "console-batch-1"},
    )
    summary = ndjson(response)[-1]["summary"]

    rows = Exchange.objects.filter(batch_id=summary["batch_id"]).order_by("reference")
    assert list(rows.values_list("reference", flat=True)) == [
        f"job:{summary['job']}:0",
        f"job:{summary['job']}:1",
    ]
    assert response["X-Request-ID"] == "console-batch-1"


def test_a_batch_goes_on_when_the_browser_goes_away(console, api_config, job_worker):
    # It used to stop starting calls; now the batch is a job that the browser only watches.
    requests = [echo(query={"delay": "0.05"})] * 30
    response = console.post_json("/api/batch", {"requests": requests, "concurrency": 2})

    next(iter(response.streaming_content))
    response.close()

    job = Job.objects.get(key=response["X-Job-Key"])
    assert settled(lambda: Job.objects.get(pk=job.pk).state, "finished", timeout=60) == "finished"
    assert job.counts()["answered"] == 30
    assert Exchange.objects.filter(batch_id=job.key).count() == 30


def test_a_batch_without_a_worker_ends_its_answer_and_keeps_the_job(console, nowhere, settings):
    # No worker has been seen (none runs in this test): once nothing has happened for four
    # beats, the answer ends and says so, and the job waits for one.
    settings.POC_JOBS = {"BEAT": 0.1}

    *items, last = ndjson(console.post_json("/api/batch", {"requests": [echo()] * 3}))

    summary = last["summary"]
    assert items == []
    assert "manage.py db_worker" in summary["aborted"]
    assert f"/api/jobs/{summary['job']}" in summary["aborted"]
    assert (summary["state"], summary["total"], summary["done"]) == ("running", 3, 0)
    assert Job.objects.get(key=summary["job"]).counts()["planned"] == 3
    assert Exchange.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "requests"),
        ({"requests": []}, "requests"),
        ({"requests": echo()}, "requests"),
        ({"requests": [echo(), "GET echo"]}, "requests"),
        ({"requests": [echo(), echo(path="../x")]}, "requests"),
        ({"requests": [echo(headers={"Authorization": "x"})]}, "requests"),
        ({"requests": [echo()], "concurrency": 0}, "concurrency"),
        ({"requests": [echo()], "concurrency": 17}, "concurrency"),
        ({"requests": [echo()], "concurrency": "many"}, "concurrency"),
        ({"requests": [echo()], "concurrency": 2.5}, "concurrency"),
        ({"requests": [echo()], "parallel": 2}, "__all__"),
    ],
)
def test_bad_batch_input_is_400_per_field_and_nothing_is_sent(console, nowhere, payload, field):
    response = console.post_json("/api/batch", payload)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Exchange.objects.count() == 0
    assert not Job.objects.exists() and not Item.objects.exists()


def test_a_batch_over_the_cap_is_refused(console, nowhere, settings):
    settings.POC_API = {**settings.POC_API, "BATCH_MAX": 3}

    response = console.post_json("/api/batch", {"requests": [echo()] * 4})

    assert response.status_code == 400
    assert "at most 3" in response.json()["errors"]["requests"][0]
    assert Exchange.objects.count() == 0
    assert not Job.objects.exists() and not Item.objects.exists()


def test_invalid_batch_items_are_named_by_index(console, nowhere):
    requests = [echo(), echo(path="../x"), echo(method="NOPE"), echo()]

    errors = console.post_json("/api/batch", {"requests": requests}).json()["errors"]["requests"]

    assert errors[0] == "2 of the 4 requests are invalid."
    assert errors[1].startswith("requests[1].path: ")
    assert errors[2].startswith("requests[2].method: Unknown method 'NOPE'")
    assert not Job.objects.exists()


# --- POST /_token_refresh, GET /api/token ----------------------------------------------------


def test_token_refresh_obtains_a_missing_token_once(console, api_config):
    first = console.post_json("/_token_refresh").json()
    second = console.post_json("/_token_refresh", {}).json()

    assert (first["state"], first["refreshed"]) == ("valid", True)
    assert (second["state"], second["refreshed"]) == ("valid", False)
    assert first["expires_in"] > 3000
    assert stats.grant_count() == 1


def test_token_refresh_with_force_gets_a_new_token(console, api_config):
    console.post_json("/_token_refresh")

    data = console.post_json("/_token_refresh", {"force": True}).json()

    assert data["refreshed"] is True
    assert data["refresh_count"] == 2
    assert stats.grant_count() == 2


def test_token_refresh_failure_is_502_with_state_and_error(console, configure_api):
    configure_api(CLIENT_SECRET="wrong-secret-value")

    response = console.post_json("/_token_refresh", {"force": True})

    assert response.status_code == 502
    data = response.json()
    assert data["state"] == "failed"
    assert data["error"]["code"] == "invalid_client"
    assert "invalid_client" in data["last_error"]
    assert data["last_error_at"]


def test_token_refresh_refuses_unknown_fields(console, nowhere):
    response = console.post_json("/_token_refresh", {"forced": True})

    assert response.status_code == 400
    assert "forced" in response.json()["errors"]["__all__"][0]


def test_token_status_reads_without_refreshing(console, api_config):
    assert console.get("/api/token").json()["state"] == "missing"
    console.post_json("/_token_refresh")

    data = console.get("/api/token").json()

    assert data["state"] == "valid"
    assert stats.grant_count() == 1
    assert "access_token" not in data and "refresh_token" not in data


def test_no_endpoint_ever_answers_with_a_secret(console, api_config, job_worker):
    console.post_json("/_token_refresh", {"force": True})
    sent = console.post_json("/api/send", echo()).json()
    token = Token.objects.get()
    secrets = [token.access_token, token.refresh_token, api_config.CLIENT_SECRET]
    assert all(secrets)

    bodies = [
        console.get("/").content,
        console.post_json("/_token_refresh", {"force": True}).content,
        console.get("/api/token").content,
        console.post_json("/api/send", echo(path="whoami")).content,
        b"".join(console.post_json("/api/batch", {"requests": [echo()]}).streaming_content),
        console.get("/api/jobs").content,
        *(console.get(f"/api/jobs/{job.key}").content for job in Job.objects.all()),
        *(console.get(f"/api/jobs/{job.key}/results").content for job in Job.objects.all()),
        console.get("/api/exchanges?kind=all").content,
        *(console.get(f"/api/exchanges/{e.pk}").content for e in Exchange.objects.all()),
    ]

    assert sent["status"] == 200
    for body in bodies:
        for secret in secrets:
            assert secret.encode() not in body


# --- GET /api/exchanges, /api/exchanges/<id> -------------------------------------------------


def make_exchanges(statuses, **fields):
    now = timezone.now()
    return Exchange.objects.bulk_create(
        Exchange(
            created_at=now - timedelta(seconds=n),
            method="GET",
            url=f"http://api.example/v1/items/{n}",
            path=f"/items/{n}",
            status=status,
            duration_ms=10.0 + n,
            **fields,
        )
        for n, status in enumerate(statuses)
    )


def test_exchanges_are_paged_newest_first_without_counting(console, django_assert_max_num_queries):
    make_exchanges([200] * 25)

    # session, user, its permissions (its own and its groups'), one page of exchanges; and
    # once per process (cached after), who may read which connection
    with django_assert_max_num_queries(6):
        first = console.get("/api/exchanges").json()
    with django_assert_max_num_queries(5):
        second = console.get("/api/exchanges?page=2").json()

    assert [row["path"] for row in first["results"][:2]] == ["/items/0", "/items/1"]
    assert (len(first["results"]), first["has_next"], first["has_previous"]) == (20, True, False)
    assert (len(second["results"]), second["has_next"], second["has_previous"]) == (5, False, True)
    row = first["results"][0]
    assert set(row) >= {"id", "created_at", "method", "path", "status", "duration_ms", "admin_url"}
    assert "response_body" not in row


@pytest.mark.parametrize(
    ("status", "expected"),
    [("2xx", [200, 201]), ("4xx", [404]), ("5xx", [503]), ("none", [None]), ("", None)],
)
def test_exchanges_filter_by_status_class(console, status, expected):
    make_exchanges([200, 404, 503, None, 201, 302])

    rows = console.get(f"/api/exchanges?status={status}").json()["results"]

    if expected is None:
        assert len(rows) == 6
    else:
        assert sorted((r["status"] for r in rows), key=str) == sorted(expected, key=str)


def test_exchanges_show_api_calls_unless_asked_for_token_requests(console):
    make_exchanges([200])
    make_exchanges([200, 200], kind=Exchange.Kind.TOKEN)

    assert len(console.get("/api/exchanges").json()["results"]) == 1
    assert len(console.get("/api/exchanges?kind=token").json()["results"]) == 2
    assert len(console.get("/api/exchanges?kind=all").json()["results"]) == 3


def test_exchanges_filter_by_batch(console):
    make_exchanges([200, 200], batch_id="b-1")
    make_exchanges([200])

    rows = console.get("/api/exchanges?batch_id=b-1").json()["results"]

    assert len(rows) == 2 and {r["batch_id"] for r in rows} == {"b-1"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=x", "page"),
        ("status=6xx", "status"),
        ("page_size=500", "page_size"),
    ],
)
def test_bad_exchange_filters_are_400(console, query, field):
    response = console.get(f"/api/exchanges?{query}")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_exchange_detail_has_bodies_and_a_replay(console):
    [exchange] = make_exchanges(
        [201],
        request_headers={"Authorization": "Bearer [redacted]", "X-Trace": "t"},
        request_body='{"name": "w"}',
        response_body='{"id": 1}',
    )
    Exchange.objects.filter(pk=exchange.pk).update(method="POST")

    data = console.get(f"/api/exchanges/{exchange.pk}").json()

    assert data["response_body"] == '{"id": 1}'
    assert data["request_headers"]["Authorization"] == "Bearer [redacted]"
    assert data["replay"] == {
        "method": "POST",
        "path": "items/0",
        "query": None,
        "headers": {"X-Trace": "t"},
        "json": {"name": "w"},
        "warnings": [],
    }


def test_token_exchanges_have_no_replay(console):
    [exchange] = make_exchanges([200], kind=Exchange.Kind.TOKEN)

    assert console.get(f"/api/exchanges/{exchange.pk}").json()["replay"] is None


def test_missing_exchange_is_404_json(console):
    response = console.get("/api/exchanges/424242")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unexpected_failure_is_a_500_in_json_not_an_html_page(console, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr("pocclient.api_views.connection_client", broken)

    response = console.post_json(
        "/api/send", {"method": "GET", "path": "echo"}, headers={"X-Request-ID": "req-500"}
    )

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"
    assert "req-500" in response.json()["error"]["message"]
    assert "something nobody expected" not in response.content.decode()
    assert "something nobody expected" in caplog.text

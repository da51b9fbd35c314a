"""The jobs' JSON endpoints, ``/api/jobs``, through Django's test client with CSRF checks on,
on the real database: making jobs from every kind of body, following them, acting on them,
and reading their results. Most jobs here are made with no worker running (nothing is sent);
those that must run get one in this process (``job_worker``)."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api_client.client import get_client
from api_client.models import Exchange
from jobs.models import Item, Job
from jobs.planning import plan
from jobs.progress import describe
from tests.helpers.waiting import settled

from .conftest import client_for
from .helpers import ndjson

pytestmark = pytest.mark.django_db(transaction=True)


def echo(**changes):
    return {"method": "GET", "path": "echo", **changes}


def planned(count: int = 3, **options) -> Job:
    """A job of ``count`` GET calls, planned and not sent (no worker runs)."""
    calls = [echo(query={"n": n}) for n in range(count)]
    return plan(get_client(), list(enumerate(calls, 1)), **options)


def post_lines(console, lines: list, query: str = ""):
    body = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return console.post(
        f"/api/jobs{query}",
        body,
        content_type="application/x-ndjson",
        headers={"X-CSRFToken": console.csrf_token()},
    )


def post_form(console, path: str = "/api/jobs", **fields):
    return console.post(path, fields, headers={"X-CSRFToken": console.csrf_token()})


def settle(item_states: dict[int, tuple], job: Job) -> None:
    """Write results onto a job's items as its worker would: {index: (state, status, ms)}."""
    now = timezone.now()
    for index, (state, status, duration) in item_states.items():
        Item.objects.filter(job=job, index=index).update(
            state=state, status=status, duration_ms=duration, finished_at=now
        )


# --- POST /api/jobs ---------------------------------------------------------------------------


def test_a_job_is_made_from_a_json_body_and_waits_for_a_worker(console, nowhere):
    response = console.post_json(
        "/api/jobs", {"name": "nightly", "requests": [echo(), echo(method="DELETE")]}
    )

    assert response.status_code == 201
    data = response.json()
    job = Job.objects.get()
    assert response["Location"] == data["url"] == f"/api/jobs/{job.key}"
    assert (data["key"], data["name"], data["state"], data["total"]) == (
        job.key,
        "nightly",
        "running",
        2,
    )
    assert (job.origin, job.created_by) == ("console", "engineer")
    assert data["counts"]["planned"] == 2
    assert "manage.py db_worker" in data["warning"]  # no worker has been seen
    assert data["actions"] == ["pause", "cancel"]
    assert data["results_url"] == f"/api/jobs/{job.key}/results"
    assert [i.method for i in Item.objects.filter(job=job)] == ["GET", "DELETE"]
    assert Exchange.objects.count() == 0


def test_options_after_the_requests_are_set_before_the_job_may_run(console, nowhere):
    response = console.post_json(
        "/api/jobs", {"requests": [echo()] * 3, "concurrency": 2, "name": "given last"}
    )

    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert (job.concurrency, job.name, job.state) == (2, "given last", "running")
    assert response.json()["concurrency"] == 2


def test_an_idempotency_header_is_planned_with_each_request(console, nowhere):
    body = {"idempotency_header": "Idempotency-Key", "requests": [echo(method="POST")] * 2}

    assert console.post_json("/api/jobs", body).status_code == 201

    keys = set(Item.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 2 and "" not in keys
    assert Job.objects.get().idempotency_header == "Idempotency-Key"


def test_an_idempotency_header_after_the_requests_is_refused_and_nothing_kept(console, nowhere):
    body = {"requests": [echo(method="POST")], "idempotency_header": "Idempotency-Key"}

    response = console.post_json("/api/jobs", body)

    assert response.status_code == 400
    assert "before requests" in response.json()["errors"]["idempotency_header"][0]
    assert not Job.objects.exists() and not Item.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"requests": [echo()], "concurrency": 99}, "concurrency", "between 1 and"),
        ({"concurrency": 0, "requests": [echo()]}, "concurrency", "between 1 and"),
        ({"requests": [echo()], "idempotency_header": "Authorization"}, "idempotency_header", ""),
        ({"idempotency_header": "Bad\nName", "requests": [echo()]}, "idempotency_header", ""),
        ({"requests": [echo()], "name": "x" * 201}, "name", "at most 200"),
        ({"requests": [echo()], "priority": 1}, "__all__", "Unknown field(s): priority"),
        ({"requests": []}, "requests", "non-empty"),
        ({"concurrency": 2}, "requests", "required"),
    ],
)
def test_bad_options_are_400_by_field_and_nothing_is_kept(console, nowhere, body, field, message):
    response = console.post_json("/api/jobs", body)

    assert response.status_code == 400, response.content
    assert message in response.json()["errors"][field][0]
    assert not Job.objects.exists() and not Item.objects.exists()


def test_a_job_is_made_from_json_lines_with_its_options_in_the_query(console, nowhere):
    lines = [echo(), {"method": "POST", "path": "items", "json": {"n": 1}}, " ", echo()]

    response = post_lines(console, lines, "?concurrency=3&name=from+a+file")

    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert (job.total, job.concurrency, job.name) == (3, 3, "from a file")
    assert json.loads(Item.objects.get(job=job, index=1).body) == {"n": 1}


def test_bad_lines_are_named_by_line_number_and_nothing_is_kept(console, nowhere):
    lines = [echo(), "{not json", echo(method="BREW"), [1], echo(path="../token"), echo()]

    response = post_lines(console, lines)

    assert response.status_code == 400
    errors = response.json()["errors"]["requests"]
    assert errors[0] == "4 of the 6 requests are invalid."
    assert errors[1].startswith("line 2: not valid JSON")
    assert errors[2].startswith("line 3, method: Unknown method 'BREW'")
    assert errors[3].startswith("line 4: expected an object")
    assert errors[4].startswith("line 5, path: ")
    assert not Job.objects.exists() and not Item.objects.exists()


def test_twenty_problems_are_listed_then_counted(console, nowhere):
    response = console.post_json("/api/jobs", {"requests": [echo(method="BREW")] * 30})

    errors = response.json()["errors"]["requests"]
    assert errors[0] == "30 of the 30 requests are invalid."
    assert len(errors) == 22 and errors[-1] == "... and 10 more."


def test_the_cap_is_poc_api_batch_max_and_it_can_grow(console, nowhere, settings):
    settings.POC_API = {**settings.POC_API, "BATCH_MAX": 2500}

    made = console.post_json("/api/jobs", {"requests": [echo()] * 2500})
    refused = post_lines(console, [echo()] * 2501)

    assert made.status_code == 201
    assert Job.objects.get().total == Item.objects.count() == 2500
    assert refused.status_code == 400
    assert "more than 2500 requests; at most 2500" in refused.json()["errors"]["requests"][0]
    assert Job.objects.count() == 1


def test_a_template_is_filled_from_each_row_of_an_uploaded_csv(console, nowhere):
    data = SimpleUploadedFile("learners.csv", b"id,name,score\n7,Ada,9.5\n8,Bob,7\n")
    template = {
        "method": "PUT",
        "path": "learners/{{id}}",
        "query": {"by": "{{name}}"},
        "json": {"name": "{{name}}", "score": "{{score}}"},
    }

    response = post_form(console, template=json.dumps(template), data=data, concurrency="2")

    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert (job.total, job.concurrency, job.name) == (2, 2, "learners.csv into PUT learners/{{id}}")
    first = Item.objects.get(job=job, index=0)
    assert (first.method, first.path) == ("PUT", "/learners/7?by=Ada")
    assert json.loads(first.body) == {"name": "Ada", "score": "9.5"}


def test_a_csv_spooled_to_disk_is_read_as_a_stream(console, nowhere, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100  # Django writes the upload to a temporary file
    rows = "id\n" + "".join(f"{n}\n" for n in range(300))
    data = SimpleUploadedFile("ids.csv", rows.encode())
    template = json.dumps({"method": "DELETE", "path": "items/{{id}}"})

    response = post_form(console, template=template, data=data)

    assert response.status_code == 201, response.content
    assert Item.objects.order_by("-index").first().path == "/items/299"


def test_a_template_is_filled_from_json_lines_rows_keeping_their_types(console, nowhere):
    rows = b'{"id": 1, "tags": ["a"]}\n{"id": 2, "tags": []}\n'
    data = SimpleUploadedFile("rows.jsonl", rows)
    template = json.dumps({"method": "POST", "path": "items/{{id}}", "json": {"t": "{{tags}}"}})

    assert post_form(console, template=template, data=data).status_code == 201

    bodies = [json.loads(b) for b in Item.objects.order_by("index").values_list("body", flat=True)]
    assert bodies == [{"t": ["a"]}, {"t": []}]


def test_rows_the_template_cannot_use_are_named_by_line_and_nothing_is_kept(console, nowhere):
    data = SimpleUploadedFile("rows.csv", b"id\n1\n\n2,extra\n../x\n")
    template = json.dumps({"method": "GET", "path": "items/{{id}}", "query": {"q": "{{name}}"}})

    response = post_form(console, template=template, data=data)

    assert response.status_code == 400
    errors = response.json()["errors"]["data"]
    assert errors[0] == "3 of the 3 rows are invalid."
    assert errors[1] == "data line 2: the row has no column 'name', which the template names."
    assert errors[2].startswith("data line 4: the row has more cells")
    assert not Job.objects.exists() and not Item.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"data": b"id\n1\n"}, "template"),
        ({"template": "{nope"}, "template"),
        ({"template": "[1]"}, "template"),
        ({"template": '{"method": "GET", "body": "x"}'}, "template"),
        ({"template": '{"method": "GET", "path": "x"}'}, "data"),
        ({"template": '{"path": "x"}', "data": b"id\n1\n", "data_format": "xml"}, "data_format"),
    ],
)
def test_a_bad_template_upload_is_400_by_field(console, nowhere, fields, field):
    if "data" in fields:
        fields["data"] = SimpleUploadedFile("d.csv", fields["data"])

    response = post_form(console, **fields)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Job.objects.exists()


def test_a_requests_file_is_read_as_json_lines_even_when_spooled_to_disk(
    console, nowhere, settings
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100  # Django writes the upload to a temporary file
    lines = "".join(json.dumps(echo(query={"n": n})) + "\n" for n in range(50)).encode()

    response = post_form(console, requests=SimpleUploadedFile("calls.jsonl", lines))

    assert response.status_code == 201, response.content
    assert Job.objects.get().name == "calls.jsonl"
    assert Item.objects.count() == 50


def test_making_a_job_needs_csrf(console, nowhere):
    response = console.post_json("/api/jobs", {"requests": [echo()]}, csrf=False)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert not Job.objects.exists()


# --- GET /api/jobs ----------------------------------------------------------------------------


def test_the_list_is_newest_first_with_counts_a_page_at_a_time(console, nowhere):
    jobs = [planned(2, name=f"job {n}") for n in range(3)]
    settle({0: ("answered", 200, 5.0)}, jobs[0])

    first = console.get("/api/jobs?page_size=2").json()
    second = console.get("/api/jobs?page_size=2&page=2").json()

    assert [row["name"] for row in first["results"]] == ["job 2", "job 1"]
    assert (first["has_next"], first["has_previous"]) == (True, False)
    assert [row["name"] for row in second["results"]] == ["job 0"]
    assert second["has_next"] is False
    row = second["results"][0]
    assert (row["done"], row["total"], row["state"]) == (1, 2, "running")
    assert row["counts"] == {"planned": 1, "leased": 0, "answered": 1, "failed": 0,
                             "unknown": 0, "cancelled": 0}  # fmt: skip
    assert row["url"] == f"/api/jobs/{jobs[0].key}"


def test_the_list_filters_by_state(console, nowhere):
    running, cancelled = planned(), planned()
    Job.objects.filter(pk=cancelled.pk).update(state=Job.State.CANCELLED)

    keys = {
        state: [row["key"] for row in console.get(f"/api/jobs?state={state}").json()["results"]]
        for state in ("active", "cancelled", "finished")
    }

    assert keys == {"active": [running.key], "cancelled": [cancelled.key], "finished": []}
    assert console.get("/api/jobs?state=asleep").status_code == 400


def test_a_page_of_the_list_costs_the_same_queries_for_2_jobs_or_20(console, nowhere):
    def queries_for_a_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert console.get("/api/jobs").status_code == 200
        return len(captured)

    queries_for_a_page()  # once per process: who may read which connection (then cached)
    for _ in range(2):
        planned(5)
    two = queries_for_a_page()
    for _ in range(18):
        planned(5)

    assert queries_for_a_page() == two


# --- GET /api/jobs/<id> -----------------------------------------------------------------------


def test_a_job_is_described_by_number_or_key(console, nowhere):
    job = planned(4)
    settle({0: ("answered", 200, 10.0), 1: ("answered", 503, 30.0), 2: ("failed", None, None)}, job)
    Item.objects.filter(job=job, index=2).update(error_code="timeout")

    by_key = console.get(f"/api/jobs/{job.key}").json()
    by_number = console.get(f"/api/jobs/{job.pk}").json()

    moving = {"calls_per_second", "eta_seconds", "elapsed_ms"}  # they change as time passes
    assert {k: v for k, v in by_key.items() if k not in moving} == {
        k: v for k, v in by_number.items() if k not in moving
    }
    assert set(describe(job)) <= set(by_key)  # every key show_job --json prints
    assert (by_key["done"], by_key["failing"]) == (3, 2)
    assert by_key["by_status"] == {"200": 1, "503": 1}
    assert by_key["by_error"] == {"timeout": 1}
    assert by_key["latency_ms"]["max"] == 30.0
    assert sum(by_key["histogram"]["counts"]) == 2
    assert by_key["actions"] == ["pause", "cancel", "resend_failed"]
    assert by_key["exchanges_url"] == f"/admin/api_client/exchange/?batch_id={job.key}"


def test_an_unknown_job_is_a_json_404(console):
    for ref in ("999999", "0" * 32, "f" * 32):
        response = console.get(f"/api/jobs/{ref}")
        assert response.status_code == 404
        assert response.json()["error"] == {
            "code": "not_found",
            "message": f"There is no job {ref}.",
        }
    assert console.get("/api/jobs/not-a-job").json()["error"]["code"] == "not_found"


def test_a_reader_sees_progress_but_no_actions(viewer, nowhere):
    job = planned()

    data = client_for(viewer).get(f"/api/jobs/{job.key}").json()

    assert data["state"] == "running" and data["actions"] == []


# --- POST /api/jobs/<id>/<action> -------------------------------------------------------------


def test_pause_resume_and_cancel_follow_the_job_state(console, nowhere):
    job = planned(3)

    paused = console.post_json(f"/api/jobs/{job.key}/pause")
    again = console.post_json(f"/api/jobs/{job.key}/pause")
    resumed = console.post_json(f"/api/jobs/{job.key}/resume")
    cancelled = console.post_json(f"/api/jobs/{job.pk}/cancel")
    too_late = console.post_json(f"/api/jobs/{job.key}/resume")

    assert (paused.status_code, paused.json()["state"]) == (200, "paused")
    assert paused.json()["actions"] == ["resume", "cancel"]
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "conflict",
        "message": f"Job {job.key} is paused; only a running job can be paused.",
    }
    assert resumed.json()["state"] == "running"
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["counts"]["cancelled"] == 3
    assert cancelled.json()["actions"] == []
    assert too_late.status_code == 409
    assert Exchange.objects.count() == 0


def test_failed_or_unknown_items_are_sent_again_on_request(console, nowhere):
    job = planned(3)
    settle({0: ("failed", None, None), 1: ("unknown", None, None), 2: ("answered", 200, 1.0)}, job)
    Job.objects.filter(pk=job.pk).update(state=Job.State.FINISHED, finished_at=timezone.now())

    failed = console.post_json(f"/api/jobs/{job.key}/resend", {"state": "failed"})
    unknown = console.post_json(f"/api/jobs/{job.key}/resend", {"state": "unknown"})
    none_left = console.post_json(f"/api/jobs/{job.key}/resend", {"state": "unknown"})

    assert (failed.json()["resent"], failed.json()["state"]) == (1, "running")
    assert unknown.json()["resent"] == 1
    assert none_left.json()["resent"] == 0
    assert job.counts()["planned"] == 2


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("resend", {}, "state"),
        ("resend", {"state": "answered"}, "state"),
        ("pause", {"now": True}, "__all__"),
    ],
)
def test_an_action_with_a_bad_body_is_400(console, nowhere, action, body, field):
    job = planned()

    response = console.post_json(f"/api/jobs/{job.key}/{action}", body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Job.objects.get().state == "running"


def test_actions_need_csrf_and_the_send_permission(console, viewer, nowhere):
    job = planned()

    no_csrf = console.post_json(f"/api/jobs/{job.key}/cancel", csrf=False)
    reader = client_for(viewer).post_json(f"/api/jobs/{job.key}/cancel")
    unknown = console.post_json(f"/api/jobs/{job.key}/explode")
    by_get = console.get(f"/api/jobs/{job.key}/cancel")

    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    assert reader.status_code == 403 and reader.json()["error"]["code"] == "permission_denied"
    assert unknown.status_code == 404
    assert by_get.status_code == 405
    assert Job.objects.get().state == "running"


# --- GET /api/jobs/<id>/results ---------------------------------------------------------------


def results_job() -> Job:
    job = planned(5)
    settle(
        {
            0: ("answered", 500, 30.0),
            1: ("answered", 200, 10.0),
            2: ("failed", None, None),
            3: ("answered", 200, 50.0),
        },
        job,
    )
    return job


@pytest.mark.parametrize(
    ("order", "indexes"),
    [
        ("index", [0, 1, 2, 3, 4]),
        ("-index", [4, 3, 2, 1, 0]),
        ("status", [1, 3, 0, 2, 4]),  # calls without a status last, either way
        ("-status", [0, 1, 3, 2, 4]),
        ("duration", [1, 0, 3, 2, 4]),
        ("-duration", [3, 0, 1, 2, 4]),
    ],
)
def test_results_sort_by_index_status_or_duration(console, nowhere, order, indexes):
    job = results_job()

    data = console.get(f"/api/jobs/{job.key}/results?order={order}").json()

    assert [row["index"] for row in data["results"]] == indexes
    assert data["order"] == order


def test_results_come_a_page_at_a_time_with_a_link_to_each_exchange(console, nowhere):
    job = results_job()
    exchange = Exchange.objects.create(method="GET", url="http://x/echo", path="/echo")
    Item.objects.filter(job=job, index=1).update(exchange_id=exchange.pk)

    first = console.get(f"/api/jobs/{job.key}/results?page_size=2").json()
    last = console.get(f"/api/jobs/{job.key}/results?page_size=2&page=3").json()
    failed = console.get(f"/api/jobs/{job.key}/results?state=failed&state=planned").json()

    assert [row["index"] for row in first["results"]] == [0, 1]
    assert (first["has_next"], first["has_previous"], first["total"]) == (True, False, 5)
    assert (
        first["results"][1]["exchange_url"] == f"/admin/api_client/exchange/{exchange.pk}/change/"
    )
    assert first["results"][0]["exchange_url"] is None
    assert (first["results"][0]["ok"], first["results"][1]["ok"]) == (False, True)
    assert [row["index"] for row in last["results"]] == [4]
    assert last["has_next"] is False
    assert [row["index"] for row in failed["results"]] == [2, 4]


def test_results_stream_as_csv_or_json_lines(console, nowhere):
    job = results_job()

    as_csv = console.get(f"/api/jobs/{job.key}/results?format=csv&order=-duration")
    as_jsonl = console.get(f"/api/jobs/{job.pk}/results?format=jsonl")

    assert as_csv.streaming and as_jsonl.streaming
    assert as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert as_csv["Content-Disposition"] == f'attachment; filename="job-{job.key}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(as_csv.streaming_content).decode())))
    assert [row["index"] for row in rows] == ["3", "0", "1", "2", "4"]
    assert rows[0]["status"] == "200" and rows[0]["duration_ms"] == "50.0"
    lines = ndjson(as_jsonl)
    assert [line["index"] for line in lines] == [0, 1, 2, 3, 4]
    assert lines[2]["state"] == "failed"


@pytest.mark.parametrize(
    "query", ["order=slowest", "format=xml", "page=0", "page_size=501", "state=asleep"]
)
def test_bad_result_queries_are_400_by_field(console, nowhere, query):
    job = planned()

    response = console.get(f"/api/jobs/{job.key}/results?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["errors"]


# --- a job run by a worker --------------------------------------------------------------------


def test_a_job_made_here_is_run_by_a_worker_and_its_results_read(console, api_config, job_worker):
    calls = [echo(), echo(path="items/999999"), echo(query={"status": 500})]

    key = console.post_json("/api/jobs", {"requests": calls, "concurrency": 2}).json()["key"]
    state = settled(lambda: console.get(f"/api/jobs/{key}").json()["state"], "finished", 60)
    data = console.get(f"/api/jobs/{key}").json()
    results = console.get(f"/api/jobs/{key}/results?order=-status").json()["results"]

    assert state == "finished"
    assert (data["done"], data["failing"], data["warning"]) == (3, 2, "")
    assert data["by_status"] == {"200": 1, "404": 1, "500": 1}
    assert data["calls_per_second"] > 0
    assert [row["status"] for row in results] == [500, 404, 200]
    assert all(row["exchange_url"] for row in results)


def test_a_batch_streams_from_json_lines_too(console, api_config, job_worker):
    body = "".join(json.dumps(echo(query={"n": n})) + "\n" for n in range(5))

    response = console.post(
        "/api/batch?concurrency=2",
        body,
        content_type="application/x-ndjson",
        headers={"X-CSRFToken": console.csrf_token()},
    )

    *items, last = ndjson(response)
    assert sorted(item["index"] for item in items) == [0, 1, 2, 3, 4]
    assert (last["summary"]["ok"], last["summary"]["concurrency"]) == (5, 2)

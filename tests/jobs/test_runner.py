"""A job's items, run by a Runner in this process against the hostile API."""

import json

import pytest

from api_client.models import Exchange
from jobs.models import Item, Job
from jobs.planning import PlanningError, data_rows, from_template, plan
from jobs.runner import Runner

pytestmark = pytest.mark.django_db(transaction=True)


def numbered(requests):
    return list(enumerate(requests, 1))


def test_every_item_of_a_job_is_sent_once_and_answered(hostile_client, hostile):
    calls = [
        {"method": "POST", "path": "echo", "query": {"n": n}, "json": {"n": n}} for n in range(60)
    ]
    job = plan(hostile_client, numbered(calls), concurrency=8)

    summary = Runner(job.pk, client=hostile_client).run()

    job.refresh_from_db()
    assert summary["sent"] == 60
    assert job.state == Job.State.FINISHED
    assert job.counts()["answered"] == 60
    received = [r.path for r in hostile.received if r.path.startswith("/api/echo")]
    assert sorted(received) == sorted(f"/api/echo?n={n}" for n in range(60))
    items = Item.objects.filter(job=job)
    assert {i.status for i in items} == {200}
    refs = set(Exchange.objects.filter(batch_id=job.key).values_list("reference", flat=True))
    assert refs == {f"job:{job.key}:{n}" for n in range(60)}


def test_an_idempotency_key_fixed_at_planning_is_sent_with_each_item(hostile_client, hostile):
    job = plan(hostile_client, numbered([{"method": "POST", "path": "echo"}] * 3),
               idempotency_header="Idempotency-Key")  # fmt: skip

    Runner(job.pk, client=hostile_client).run()

    keys = {i.idempotency_key for i in Item.objects.filter(job=job)}
    sent = {r.header("Idempotency-Key") for r in hostile.received if r.path == "/api/echo"}
    assert len(keys) == 3 and sent == keys


def test_a_bad_call_keeps_no_job_and_names_its_line(hostile_client):
    calls = [{"path": "echo"}, {"method": "BREW", "path": "x"}, {"path": "../token"}]

    with pytest.raises(PlanningError) as caught:
        plan(hostile_client, numbered(calls))

    assert caught.value.count == 2
    assert caught.value.problems[0].startswith("line 2: Unknown method 'BREW'")
    assert Job.objects.count() == 0 and Item.objects.count() == 0


def test_a_template_is_filled_from_each_csv_row(hostile_client, hostile, tmp_path):
    data = tmp_path / "learners.csv"
    data.write_text("id,name,score\n7,Ada,9.5\n8,Bob,7\n")
    template = {
        "method": "PUT",
        "path": "learners/{{id}}",
        "query": {"by": "{{name}}"},
        "headers": {"X-Learner": "{{id}}"},
        "json": {"name": "{{name}}", "score": "{{score}}"},
    }

    with data.open("rb") as stream:
        job = plan(
            hostile_client, from_template(template, data_rows(stream, kind="csv", limit=10_000))
        )
    Runner(job.pk, client=hostile_client).run()

    first = Item.objects.get(job=job, index=0)
    assert (first.path, first.headers, json.loads(first.body)) == (
        "/learners/7?by=Ada",
        {"X-Learner": "7"},
        {"name": "Ada", "score": "9.5"},
    )
    assert Job.objects.get(pk=job.pk).counts()["answered"] == 2


def test_a_429_sends_the_item_again_once_the_pause_ends_not_failed(api):
    query = {"status": 429, "retry_after": 1, "fail_first": 1, "key": "job-429"}
    job = plan(api, numbered([{"method": "POST", "path": "echo", "query": query, "json": {}}]))

    Runner(job.pk, client=api).run()

    item = Item.objects.get(job=job)
    assert (item.state, item.status, item.sends) == (Item.State.ANSWERED, 200, 2)
    assert Exchange.objects.filter(batch_id=job.key).count() == 2  # both calls on record

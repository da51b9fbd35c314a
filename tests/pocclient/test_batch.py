"""The batch's parts without HTTP: the JSON body read as a stream (``pocclient.intake``), and
the lines and summary read from a job (``pocclient.batch``, ``jobs.progress``)."""

import io
import json

import pytest
from django.utils import timezone

from jobs import progress
from jobs.models import Item, Job
from jobs.progress import latency
from pocclient import intake
from pocclient.batch import Follow, item_line
from pocclient.intake import BodyError, JsonBody


def events(body: bytes, *, limit: int = 10_000) -> list[tuple]:
    return list(JsonBody(io.BytesIO(body), limit=limit).events())


class Recording(io.BytesIO):
    """A body that remembers the most it was asked for at once."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, size: int = -1) -> bytes:
        self.largest = max(self.largest, size)
        return super().read(size)


def test_a_body_is_read_member_by_member_and_the_requests_one_by_one():
    body = b'{"concurrency": 3, "requests": [{"path": "a"}, {"path": "b"}], "name": "x"}'

    assert events(body) == [
        ("member", "concurrency", "3"),
        ("requests", None, None),
        ("request", 0, '{"path": "a"}'),
        ("request", 1, '{"path": "b"}'),
        ("member", "name", '"x"'),
    ]


def test_a_large_body_is_held_one_request_and_one_chunk_at_a_time(monkeypatch):
    monkeypatch.setattr(intake, "CHUNK", 256)
    request = json.dumps({"method": "POST", "path": "items", "json": {"n": "x" * 100}})
    body = ('{"requests": [' + ", ".join([request] * 5000) + "]}").encode()
    stream = Recording(body)
    reader = JsonBody(stream, limit=10_000)
    held = 0

    for kind, _, text in reader.events():
        held = max(held, len(reader.text))
        if kind == "request":
            assert json.loads(text)["json"]["n"] == "x" * 100

    assert len(body) > 700_000
    assert held < 3 * 256 + len(request)  # never the body: a request, and what came with it
    assert stream.largest == 256


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_values_cut_by_a_chunk_boundary_are_read_whole(monkeypatch, chunk):
    monkeypatch.setattr(intake, "CHUNK", chunk)
    body = '{"concurrency": 12345, "requests": [{"path": "é/ü"}, {"n": 1.5e3}], "x": true}'

    found = events(body.encode())

    assert found[0] == ("member", "concurrency", "12345")
    assert [e[2] for e in found if e[0] == "request"] == ['{"path": "é/ü"}', '{"n": 1.5e3}']
    assert found[-1] == ("member", "x", "true")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "The request body must be a JSON object."),
        (b"<html>", "not valid JSON: Expecting value at character 0"),
        (b'{"requests": [1,]}', "not valid JSON: Expecting value at character 16"),
        (b'{"requests": [1} ', "Expecting ',' delimiter at character 15"),
        (b'{"a": 1,}', "Expecting property name enclosed in double quotes"),
        (b'{"a": 1} {"b": 2}', "Extra data at character 9"),
        (b'{"a": 1', "Expecting ',' delimiter"),
        (b'{"requests": ["\xff"]}', "not UTF-8 text"),
        (b'{"requests": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested too deeply"),
    ],
)
def test_a_body_that_stops_being_json_is_refused_where_it_stops(body, message):
    with pytest.raises(BodyError) as caught:
        events(body, limit=1_000_000)

    assert message in caught.value.message
    assert caught.value.field == "__all__"


def test_a_request_longer_than_the_limit_is_named_and_nothing_more_is_read():
    body = b'{"requests": [{"path": "a"}, {"json": "' + b"x" * 5000 + b'"}, {"path": "c"}]}'

    with pytest.raises(BodyError) as caught:
        events(body, limit=1000)

    assert caught.value.field == "requests"
    assert caught.value.message.startswith("requests[1]: longer than 1000 characters")


def test_requests_given_twice_is_refused():
    with pytest.raises(BodyError) as caught:
        events(b'{"requests": [], "requests": []}')

    assert caught.value.field == "requests"


# --- the lines and the summary, read from a job -------------------------------------------


def row(index, state, status=None, duration=None, exchange=None, code="", error=""):
    return {"index": index, "state": state, "status": status, "duration_ms": duration,
            "exchange_id": exchange, "error_code": code, "error": error}  # fmt: skip


def test_item_lines_keep_the_batch_shape():
    lines = [
        item_line(row(0, "answered", 200, 10.04, 7)),
        item_line(row(1, "answered", 503, 30.0, 8)),
        item_line(row(2, "failed", None, None, 9, "timeout", "too slow")),
        item_line(row(3, "unknown", None, None, 10, "connection_error", "it broke off")),
        item_line(row(4, "cancelled")),
    ]

    assert lines[0] == {
        "index": 0,
        "status": 200,
        "ok": True,
        "duration_ms": 10.0,
        "exchange_id": 7,
        "error": None,
    }
    assert (lines[1]["ok"], lines[1]["error"]) == (False, None)  # a 503 is an answer
    assert lines[2]["error"] == {"code": "timeout", "message": "too slow"}
    assert (lines[2]["status"], lines[2]["exchange_id"]) == (None, 9)
    assert lines[3]["error"]["code"] == "connection_error"
    assert lines[4]["error"]["code"] == "cancelled"
    assert all(set(line) == set(lines[0]) for line in lines)


def finished_job(durations: list[float | None], state: str = "answered") -> Job:
    job = Job.objects.create(state=Job.State.FINISHED, total=len(durations))
    now = timezone.now()
    Item.objects.bulk_create(
        Item(
            job=job,
            index=n,
            method="GET",
            path="/x",
            state=state,
            status=200,
            duration_ms=value,
            finished_at=now,
        )
        for n, value in enumerate(durations)
    )
    return job


@pytest.mark.django_db
def test_the_histogram_bins_cover_every_call_once_with_nearest_rank_percentiles():
    job = finished_job([1.0, 2.0, 2.5, 3.0, 9.0, 10.0, 10.0, 4.0, 5.5, None])

    shape = latency(job)

    assert sum(shape["histogram"]["counts"]) == 9  # the call without a duration is not counted
    assert len(shape["histogram"]["edges"]) == len(shape["histogram"]["counts"]) + 1
    assert (shape["histogram"]["edges"][0], shape["histogram"]["edges"][-1]) == (1.0, 10.0)
    assert shape["percentiles"] == {"min": 1.0, "p50": 4.0, "p95": 10.0, "max": 10.0,
                                    "mean": 5.2}  # fmt: skip


@pytest.mark.django_db
def test_the_histogram_of_equal_durations_is_one_bin():
    assert latency(finished_job([4.0, 4.0, 4.0]))["histogram"] == {
        "edges": [4.0, 5.0],
        "counts": [3],
    }


@pytest.mark.django_db
def test_past_the_sample_size_a_sample_stands_for_the_job_whatever_its_period(monkeypatch):
    monkeypatch.setattr(progress, "HISTOGRAM_SAMPLE", 450)  # a step of 10 for 4,500 answers
    # Every tenth call failed and durations cycle through 0..999 ms: a sample of every tenth
    # index would hold no answer at all; one of the first calls, only some durations.
    job = finished_job([float(n % 1000) for n in range(5000)])
    job.items.filter(index__in=range(0, 5000, 10)).update(state="failed")

    shape = latency(job)

    assert 4000 <= sum(shape["histogram"]["counts"]) <= 5000  # 4,500 answered
    assert 400 <= shape["percentiles"]["p50"] <= 600  # 499.5 for all of them
    assert shape["percentiles"]["p95"] >= 900


@pytest.mark.django_db
def test_the_histogram_has_at_most_twenty_bins_and_none_without_answers():
    assert len(latency(finished_job([float(n) for n in range(2000)]))["histogram"]["counts"]) == 20
    assert latency(finished_job([3.0], state="failed")) == {"histogram": None, "percentiles": None}


@pytest.mark.django_db
def test_following_a_job_gives_each_finished_item_once():
    job = finished_job([1.0, 2.0, 3.0])
    follow = Follow(job)

    first = follow.recent()
    again = follow.recent()
    Item.objects.filter(job=job, index=1).update(finished_at=timezone.now())
    late = list(follow.rest())

    assert [r["index"] for r in first] == [0, 1, 2]
    assert again == [] and late == []
    assert follow.count == 3

"""Batch statistics and streaming helpers, without HTTP."""

import contextvars

from api_client.exceptions import ApiTimeoutError
from api_client.messages import ApiResponse, BatchResult
from pocclient.batch import BatchSummary, histogram, item_line, iterate_in


def response(status: int, duration_ms: float) -> ApiResponse:
    return ApiResponse("GET", "http://x/", "/", status, {}, b"", duration_ms, 1, "", 7)


def test_histogram_bins_cover_every_value_once():
    values = sorted([1.0, 2.0, 2.5, 3.0, 9.0, 10.0, 10.0, 4.0, 5.5])

    result = histogram(values)

    assert sum(result["counts"]) == len(values)
    assert len(result["edges"]) == len(result["counts"]) + 1
    assert (result["edges"][0], result["edges"][-1]) == (1.0, 10.0)


def test_histogram_of_equal_values_is_one_bin():
    assert histogram([4.0, 4.0, 4.0]) == {"edges": [4.0, 5.0], "counts": [3]}


def test_histogram_has_at_most_twenty_bins():
    assert len(histogram([float(n) for n in range(10_000)])["counts"]) == 20


def test_item_lines_and_summary():
    results = [
        BatchResult(0, {}, response=response(200, 10.04)),
        BatchResult(1, {}, response=response(503, 30.0)),
        BatchResult(2, {}, error=ApiTimeoutError("too slow", exchange_id=9)),
        BatchResult(3, {}, error=RuntimeError("secret-bearing text")),
    ]
    summary = BatchSummary(total=5, concurrency=2, batch_id="b")

    lines = [item_line(result) for result in results]
    for result in results:
        summary.add(result)
    data = summary.as_dict()

    assert lines[0] == {
        "index": 0,
        "status": 200,
        "ok": True,
        "duration_ms": 10.0,
        "exchange_id": 7,
        "error": None,
    }
    assert lines[2]["error"] == {"code": "timeout", "message": "too slow"}
    assert lines[2]["exchange_id"] == 9
    assert lines[3]["error"]["code"] == "internal_error"
    assert "secret-bearing" not in lines[3]["error"]["message"]
    assert (data["total"], data["done"], data["ok"], data["failed"], data["errors"]) == (
        5,
        4,
        1,
        3,
        2,
    )
    assert data["by_status"] == {"200": 1, "503": 1}
    assert data["by_error"] == {"internal_error": 1, "timeout": 1}
    assert data["latency_ms"] == {"min": 10.0, "p50": 10.0, "p95": 30.0, "max": 30.0, "mean": 20.0}


def test_iterate_in_runs_each_step_and_the_close_in_the_given_context():
    var = contextvars.ContextVar("var", default="outside")
    seen = []

    def numbers():
        try:
            for n in range(3):
                seen.append(var.get())
                yield n
        finally:
            seen.append(f"closed {var.get()}")

    var.set("inside")
    context = contextvars.copy_context()
    var.set("outside")

    stream = iterate_in(context, numbers())
    assert next(stream) == 0
    stream.close()

    assert seen == ["inside", "closed inside"]

"""Property-based bad input against the console's JSON endpoints (Hypothesis).

Whatever a browser posts (any JSON, any bytes, any size) the answer is JSON with a status that
says what happened, never a 500; what is refused sends nothing; what is accepted goes only
under the API base URL. The API is a closed port (``nowhere``): an accepted call fails to get
a token and is answered 502, and recorded, which is how the test sees what would have been
sent.
"""

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api_client.models import Exchange
from tests.helpers.strategies import header_text, json_values, paths, request_headers, stays_under

from .helpers import ndjson

# A batch's workers write from threads of their own: they must see committed data.
pytestmark = pytest.mark.django_db(transaction=True)
FIXTURES_PER_TEST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "get", "TRACE", "", "G\r\nET"])
queries = st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3)
calls = st.fixed_dictionaries(
    {"method": methods, "path": paths},
    optional={
        "query": queries,
        "headers": request_headers,
        "json": json_values,
        "body": st.text(max_size=5),  # not a field: refused by name
    },
)
anything = st.one_of(json_values, calls, st.dictionaries(st.text(max_size=8), json_values))


def api_calls() -> list[Exchange]:
    return list(Exchange.objects.filter(kind=Exchange.Kind.API).order_by("id"))


def assert_json_error(response, *statuses: int) -> dict:
    assert response.status_code in statuses, response.content[:500]
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data["error"]) >= {"code", "message"}
    return data


@FIXTURES_PER_TEST
@given(anything)
@example({"method": "GET", "path": "..;/oauth/token"})
@example({"method": "GET", "path": "echo", "headers": {"X-A": "1\r\nHost: evil.example"}})
@example({"method": "GET", "path": "echo", "headers": {"X-A\r\nX-B": "1"}})
@example({"method": "GET", "path": "echo", "headers": {"X-A": "€"}})
@example({"method": "POST", "path": "echo", "json": {"a": "\ud800"}})
@example({"method": "POST", "path": "echo", "json": json.loads("[" * 150 + "]" * 150)})
def test_send_refuses_or_stays_under_the_base_url(console, nowhere, payload):
    before = len(api_calls())

    response = console.post_json("/api/send", raw=json.dumps(payload).encode())

    data = assert_json_error(response, 400, 502)
    sent = api_calls()[before:]
    if response.status_code == 400:
        assert data["error"]["code"] == "invalid"
        assert sent == []  # refused before anything was sent
    else:
        [call] = sent
        assert call.pk == data["id"] and call.attempts == 0
        assert stays_under(f"{nowhere}/api/", call.url), call.url


@FIXTURES_PER_TEST
@given(st.binary(max_size=300))
@example(b"\xff\xfe{}")  # not UTF-8
@example(b'{"method": "GET", "path": "\xc3\x28"}')  # invalid UTF-8 inside a string
@example(b'{"method": "GET", "path": "echo", "json": NaN}')
@example(b"[" * 10_000 + b"]" * 10_000)  # deeper than the JSON decoder goes
def test_send_with_any_bytes_is_answered_in_json_and_sends_nothing(console, nowhere, raw):
    before = len(api_calls())

    response = console.post_json("/api/send", raw=raw)

    assert_json_error(response, 400)
    assert len(api_calls()) == before


@FIXTURES_PER_TEST
@given(st.integers(min_value=0, max_value=3000))
def test_bodies_around_the_size_limits_are_refused_with_the_limit_named(
    console, nowhere, settings, size
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    settings.POC_API = {**settings.POC_API, "MAX_REQUEST_BYTES": 1000}
    body = {"method": "POST", "path": "echo", "json": "x" * size}
    encoded = json.dumps(body).encode()

    response = console.post_json("/api/send", raw=encoded)

    if len(encoded) > 2000:
        data = assert_json_error(response, 413)
        assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in data["errors"]["__all__"][0]
    elif size + 2 > 1000:  # the JSON string with its quotes
        data = assert_json_error(response, 400)
        assert "POC_API_MAX_REQUEST_BYTES" in data["errors"]["json"][0]
    else:
        assert_json_error(response, 502)  # accepted: sent (nowhere)


@FIXTURES_PER_TEST
@given(st.dictionaries(header_text, header_text, min_size=1, max_size=3))
def test_line_breaks_in_header_names_or_values_are_refused_by_field(console, nowhere, headers):
    response = console.post_json("/api/send", {"method": "GET", "path": "echo", "headers": headers})

    data = assert_json_error(response, 400, 502)
    if any("\r" in text or "\n" in text for pair in headers.items() for text in pair):
        assert response.status_code == 400
        assert list(data["errors"]) == ["headers"]


@FIXTURES_PER_TEST
@given(st.lists(calls | json_values, min_size=1, max_size=5), st.integers(-1, 20))
def test_batch_refuses_as_a_whole_or_sends_only_under_the_base_url(
    console, nowhere, job_worker, items, concurrency
):
    before = len(api_calls())

    response = console.post_json("/api/batch", {"requests": items, "concurrency": concurrency})

    if response.status_code == 400:
        assert_json_error(response, 400)
        assert len(api_calls()) == before
        return
    assert response.status_code == 200
    *lines, last = ndjson(response)
    assert last["summary"]["done"] == len(items) == len(lines)
    sent = api_calls()[before:]
    assert sorted(c.pk for c in sent) == sorted(line["exchange_id"] for line in lines)
    assert all(stays_under(f"{nowhere}/api/", call.url) for call in sent)

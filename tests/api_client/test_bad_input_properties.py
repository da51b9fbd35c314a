"""Property-based bad input (Hypothesis): whatever a caller passes, nothing leaves the base URL,
no header can be smuggled in, and a refusal is always an ``InvalidRequestError`` naming the
field, never a crash.

"Leaves the base URL" is judged as a lenient server would (``tests.helpers.strategies``).
"""

import json
import re

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from api_client import tokens
from api_client.client import ApiClient
from api_client.conf import api_settings
from api_client.exceptions import InvalidRequestError
from api_client.models import Exchange
from api_client.validation import MAX_HEADER_VALUE, clean_headers, confine_path, encode_json
from bench.stub_api import serve_in_thread, url_of
from tests.helpers.strategies import header_text, json_values, paths, request_headers, stays_under

BASE = "http://api.example:8080/v1/"


@settings(max_examples=1000, deadline=None)
@given(paths)
@example("..;/admin")
@example("items/%252e%252e/%252e%252e/admin")
@example("%5c..%5cadmin")
@example("%25252525252e%25252525252e/admin")  # encoded six times over
@example("https://evil.example[")  # urlsplit raises ValueError on this
def test_no_accepted_path_leaves_the_base_url(path):
    try:
        url, relative = confine_path(BASE, path)
    except InvalidRequestError as exc:
        assert exc.field == "path"
        event("refused")
        return
    event("accepted")
    assert url == BASE + relative.lstrip("/")
    assert stays_under(BASE, url), url


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(header_text, header_text, max_size=4))
@example({"X-A": "1\r\nX-Injected: 1"})
@example({"X-A\r\nX-Injected": "1"})
@example({"X-A": "€"})
def test_accepted_headers_cannot_carry_a_line_break_or_an_unsendable_character(headers):
    try:
        cleaned = clean_headers(headers)
    except InvalidRequestError as exc:
        assert exc.field == "headers"
        return
    for name, value in cleaned.items():
        assert re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name)
        assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value)
        value.encode("latin-1")  # what http.client will do with it
        assert len(value) <= MAX_HEADER_VALUE


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=1, max_value=200))
@example({"a": "\ud800"}, 100)  # a lone surrogate: not encodable as UTF-8
@example(float("nan"), 100)
@example("x" * 300, 100)
def test_a_body_is_valid_utf8_json_within_the_limit_or_refused(value, limit):
    try:
        body = encode_json(value, max_bytes=limit)
    except InvalidRequestError as exc:
        assert exc.field == "json"
        return
    assert len(body) <= limit
    json.loads(body.decode("utf-8"))


@pytest.fixture
def stub_client(db):
    """A client for a stub API in a thread of this process, which keeps every request target."""
    with serve_in_thread() as server:
        root = url_of(server)
        client = ApiClient(
            api_settings().with_overrides(
                BASE_URL=f"{root}/api/v1/", TOKEN_URL=f"{root}/token", RETRIES=0
            )
        )
        client.get("warm-up")
        yield client, server
        client.close()
    tokens.clear_cache()


@pytest.mark.django_db
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(paths, request_headers)
@example("..;/token", {})
@example("%2e%2e/%2e%2e/token", {})
@example("x", {"X-A": "€"})
@example("x", {"X-A": "1\r\nHost: evil.example"})
def test_what_the_client_sends_stays_under_the_base_url(stub_client, path, headers):
    client, server = stub_client
    server.targets.clear()
    sent_before = Exchange.objects.count()

    try:
        response = client.get(path, headers=headers)
    except InvalidRequestError as exc:
        assert exc.field in ("path", "headers")
        assert not server.targets  # refused before anything was sent
        assert Exchange.objects.count() == sent_before
        event(f"refused: {exc.field}")
        return
    event("sent")

    assert response.status == 200
    [target] = server.targets
    assert stays_under(f"{url_of(server)}/api/v1/", url_of(server) + target), target
    assert Exchange.objects.get(pk=response.exchange_id).path == response.path

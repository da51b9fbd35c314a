"""replay_request: a logged exchange back into the request that made it."""

import pytest

from api_client.models import Exchange
from api_client.replay import replay_request
from api_client.transport import USER_AGENT

CLIENT_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "gzip, deflate",
    "Accept": "application/json",
    "Connection": "keep-alive",
    "Authorization": "Bearer [redacted]",
    "X-Request-ID": "abc123",
}


def exchange(**fields) -> Exchange:
    defaults = {"method": "GET", "path": "/echo", "request_headers": CLIENT_HEADERS}
    return Exchange(**{**defaults, **fields})


def test_client_headers_are_dropped_and_the_callers_kept():
    headers = {**CLIENT_HEADERS, "X-Trace": "t-1", "Accept": "text/csv"}

    replay = replay_request(exchange(request_headers=headers))

    assert replay.request.headers == {"X-Trace": "t-1", "Accept": "text/csv"}
    assert replay.warnings == []


def test_query_string_becomes_a_mapping_with_repeated_names_as_lists():
    replay = replay_request(exchange(path="/items/3?page=2&tag=a&tag=b&empty="))

    assert replay.request.path == "items/3"
    assert replay.request.query == {"page": "2", "tag": ["a", "b"], "empty": ""}


def test_json_body_is_restored_and_its_content_type_left_to_the_client():
    replay = replay_request(
        exchange(
            method="POST",
            request_headers={**CLIENT_HEADERS, "Content-Type": "application/json"},
            request_body='{"name": "w", "n": [1]}',
        )
    )

    assert (replay.request.method, replay.request.json) == ("POST", {"name": "w", "n": [1]})
    assert replay.request.headers is None


@pytest.mark.parametrize(
    ("fields", "warning"),
    [
        ({"path": "/echo?api_key=%5Bredacted%5D&a=1"}, "query parameter api_key was redacted"),
        ({"request_headers": {"X-Api-Key": "[redacted]"}}, "X-Api-Key header was redacted"),
        ({"method": "POST", "request_body": '{"password": "[redacted]"}'}, "body fields"),
        ({"method": "POST", "request_body": "name=w"}, "not JSON"),
    ],
)
def test_what_cannot_be_restored_is_dropped_with_a_warning(fields, warning):
    replay = replay_request(exchange(**fields))

    assert any(warning in text for text in replay.warnings), replay.warnings
    assert "[redacted]" not in str(replay.request.query or {})
    assert "[redacted]" not in str(replay.request.headers or {})


def test_a_body_cut_at_the_log_limit_is_not_replayed(settings):
    settings.POC_API = {**settings.POC_API, "LOG_BODY_LIMIT": 10}

    replay = replay_request(exchange(method="POST", request_body='{"a": "0123'))

    assert replay.request.json is None
    assert "LOG_BODY_LIMIT" in replay.warnings[0]


def test_token_requests_cannot_be_replayed():
    with pytest.raises(ValueError, match="Only API calls"):
        replay_request(exchange(kind=Exchange.Kind.TOKEN))


def test_a_replayed_call_is_sent_like_the_original(api):
    first = api.post("echo/x", query={"q": "1"}, headers={"X-Trace": "t"}, json={"a": 1})

    replay = replay_request(Exchange.objects.get(pk=first.exchange_id))
    again = api.request(
        replay.request.method,
        replay.request.path,
        query=replay.request.query,
        headers=replay.request.headers,
        json=replay.request.json,
    )

    original, repeated = first.json(), again.json()
    for key in ("method", "path", "query", "json"):
        assert repeated[key] == original[key]
    assert repeated["headers"]["X-Trace"] == "t"
    stored, recorded = (
        Exchange.objects.get(pk=again.exchange_id),
        Exchange.objects.get(pk=first.exchange_id),
    )
    assert (stored.path, stored.request_body) == (recorded.path, recorded.request_body)
    assert stored.request_headers == recorded.request_headers


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": Exchange.Kind.TOKEN}, "Only API calls"),
        ({"path": "/x?token=%5Bredacted%5D"}, "query parameter token was redacted"),
        ({"request_headers": {"X-Auth-Token": "[redacted]"}}, "X-Auth-Token header"),
        ({"method": "POST", "request_body": '{"secret": "[redacted]"}'}, "body fields"),
        ({"method": "POST", "request_body": "{truncat"}, "not JSON"),
    ],
)
def test_the_admin_replay_skips_what_cannot_be_rebuilt_in_full(fields, reason):
    from api_client.replay import replay

    [outcome] = replay([exchange(pk=1, **fields)], client=None, batch_id="b")  # never sends

    assert outcome.outcome == "skipped"
    assert reason in outcome.skipped

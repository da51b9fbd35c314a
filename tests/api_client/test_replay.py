"""Rebuilding a call from its exchange."""

import pytest

from api_client.client import ApiRequest
from api_client.replay import NotReplayable, to_request
from tests.helpers.exchanges import make_exchange


def test_the_client_s_own_headers_are_left_for_the_client_to_set():
    exchange = make_exchange(
        method="PUT",
        path="/items/3?v=2",
        request_headers={
            "User-Agent": "pocclient/0.1",
            "Accept-Encoding": "gzip",
            "Accept": "application/json",
            "Connection": "keep-alive",
            "Content-Type": "application/json",
            "X-Request-ID": "old-id",
            "Authorization": "Bearer [redacted]",
            "If-Match": '"v2"',
        },
        request_body='{"name": "w"}',
    )

    assert to_request(exchange) == ApiRequest(
        "PUT",
        "/items/3?v=2",
        headers={"Accept": "application/json", "If-Match": '"v2"'},
        json={"name": "w"},
    )


def test_a_call_without_body_or_extra_headers():
    exchange = make_exchange(request_headers={"Authorization": "Bearer [redacted]"})

    assert to_request(exchange) == ApiRequest("GET", "/items")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": "token"}, "token requests"),
        ({"path": "/x?token=[redacted]"}, "query"),
        ({"request_headers": {"X-Auth-Token": "[redacted]"}}, "header"),
        ({"request_body": '{"secret": "[redacted]"}'}, "body was not stored"),
        ({"request_body": "{truncat"}, "not complete JSON"),
    ],
)
def test_what_cannot_be_sent_faithfully_is_refused_with_a_reason(fields, reason):
    with pytest.raises(NotReplayable, match=reason):
        to_request(make_exchange(**fields))

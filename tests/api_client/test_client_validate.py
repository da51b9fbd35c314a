"""ApiClient.validate: the checks of request(), without sending."""

import pytest

from api_client.exceptions import InvalidRequestError
from api_client.messages import ApiRequest
from api_client.models import Exchange


@pytest.fixture
def offline(configure_api, closed_port):
    nowhere = f"http://127.0.0.1:{closed_port}"
    return configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token")


def test_a_good_request_comes_back_as_an_api_request(offline):
    call = offline.validate({"method": "post", "path": "items", "json": {"a": 1}})

    assert call == ApiRequest("post", "items", json={"a": 1})
    assert Exchange.objects.count() == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"method": "BREW", "path": "x"}, "method"),
        ({"path": "../x"}, "path"),
        ({"path": "x", "headers": {"Host": "evil"}}, "headers"),
        ({"path": "x", "query": {"a": None}}, "query"),
        ({"path": "x", "json": {"a": 1}}, "json"),
        ({"path": "x", "body": "?"}, "requests"),
        ("GET x", "requests"),
    ],
)
def test_a_bad_request_is_refused_as_request_would(offline, request_, field):
    with pytest.raises(InvalidRequestError) as caught:
        offline.validate(request_)

    assert caught.value.field == field
    assert Exchange.objects.count() == 0

"""request_many and iter_many against the live sandbox."""

import pytest

from api_client.exceptions import InvalidRequestError
from api_client.messages import ApiRequest
from api_client.models import Exchange


def test_results_are_in_input_order_and_failures_do_not_abort_the_others(api):
    requests = [
        {"method": "GET", "path": "echo", "query": {"delay": 0.2}},
        {"method": "GET", "path": "../escape"},
        ApiRequest("GET", "items/999999"),
        {"method": "GET", "path": "whoami"},
    ]

    results = api.request_many(requests, concurrency=4, batch_id="b1")

    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[0].status == 200
    assert isinstance(results[1].error, InvalidRequestError)
    assert results[2].status == 404 and not results[2].ok
    assert results[3].ok
    assert Exchange.objects.filter(batch_id="b1").count() == 3  # the refused one never left


def test_iter_many_yields_results_as_they_finish(api):
    requests = [
        {"method": "GET", "path": "echo", "query": {"delay": 0.5}},
        {"method": "GET", "path": "echo"},
    ]

    order = [r.index for r in api.iter_many(requests, concurrency=2)]

    assert order == [1, 0]


@pytest.mark.parametrize("concurrency", [0, 17, -1])
def test_concurrency_outside_the_pool_size_is_refused(api, concurrency):
    with pytest.raises(InvalidRequestError) as caught:
        api.iter_many([{"method": "GET", "path": "echo"}], concurrency=concurrency)

    assert caught.value.field == "concurrency"


def test_unknown_request_fields_become_an_error_for_that_item(api):
    [result] = api.request_many([{"method": "GET", "path": "echo", "body": "x"}])

    assert isinstance(result.error, InvalidRequestError)
    assert "body" in str(result.error)

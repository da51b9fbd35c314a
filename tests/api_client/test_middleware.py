"""RequestIdMiddleware: every request gets an id, returned, sent on and stored."""

import pytest

from api_client.context import REQUEST_ID_HEADER, get_request_id
from api_client.models import Exchange


@pytest.mark.django_db
def test_a_request_without_an_id_gets_a_new_one(client):
    first = client.get("/admin/login/")
    second = client.get("/admin/login/")

    assert len(first[REQUEST_ID_HEADER]) == 32
    assert first[REQUEST_ID_HEADER] != second[REQUEST_ID_HEADER]


@pytest.mark.django_db
@pytest.mark.parametrize("incoming", ["abc-123", "0af7651916cd43dd8448eb211c80319c", "a.b:c_d"])
def test_a_well_formed_incoming_id_is_kept(client, incoming):
    response = client.get("/admin/login/", headers={"X-Request-ID": incoming})

    assert response[REQUEST_ID_HEADER] == incoming


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "<script>", "-starts-with-dash", "x" * 65, "line\nbreak", "ünïcode"],
)
def test_a_malformed_incoming_id_is_replaced(client, incoming):
    response = client.get("/admin/login/", headers={"X-Request-ID": incoming})

    returned = response[REQUEST_ID_HEADER]
    assert returned != incoming
    assert len(returned) == 32


@pytest.mark.django_db
def test_error_responses_carry_the_id_too(client):
    response = client.get("/no-such-page", headers={"X-Request-ID": "lost-1"})

    assert response.status_code == 404
    assert response[REQUEST_ID_HEADER] == "lost-1"


@pytest.mark.django_db
def test_the_id_is_no_longer_current_after_the_request(client):
    client.get("/admin/login/", headers={"X-Request-ID": "gone-1"})

    assert get_request_id() == ""


def test_exchanges_caused_by_a_request_carry_its_id(client, api_config, settings):
    settings.ROOT_URLCONF = "tests.api_client.urls"

    response = client.get("/test/call-api", headers={"X-Request-ID": "page-42"})

    body = response.json()
    assert body["request_id"] == "page-42"
    assert body["echoed"] == "page-42"  # sent outbound
    caused = Exchange.objects.filter(pk__in=body["exchanges"])
    assert caused.count() == 3  # one call, two from worker threads
    assert set(caused.values_list("request_id", flat=True)) == {"page-42"}
    # The token request the first call needed belongs to the page too.
    assert Exchange.objects.get(kind=Exchange.Kind.TOKEN).request_id == "page-42"

"""The console's endpoints in front of a hostile API: small, clear answers, never a 500, and
every call that may have reached the API on record."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from api_client.models import Exchange
from api_client.permissions import CONSOLE_USERS

from .helpers import ConsoleClient, ndjson

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def console(db) -> ConsoleClient:
    user = get_user_model().objects.create_user("hostile-console", is_staff=True)
    user.groups.add(Group.objects.get(name=CONSOLE_USERS))
    client = ConsoleClient()
    client.force_login(user)
    return client


def send(console: ConsoleClient, path: str):
    return console.post_json("/api/send", {"method": "GET", "path": path})


def test_a_bomb_is_a_small_502_naming_the_limit_not_gigabytes_of_json(console, hostile_config):
    hostile_config()

    response = send(console, "bomb?mb=200")

    assert response.status_code == 502
    assert len(response.content) < 2000
    data = response.json()
    assert data["error"]["code"] == "response_too_large"
    assert "POC_API_MAX_RESPONSE_BYTES" in data["error"]["message"]
    assert Exchange.objects.get(pk=data["id"]).status == 200


def test_a_drip_is_a_504_at_the_deadline(console, hostile_config):
    hostile_config(DEADLINE=2)

    response = send(console, "drip-body?interval=0.5")

    assert response.status_code == 504
    assert "POC_API_DEADLINE" in response.json()["error"]["message"]


def test_a_retry_after_beyond_the_deadline_is_a_503_that_says_when(console, hostile_config):
    hostile_config(RETRIES=2, DEADLINE=5, RETRY_AFTER_MAX=60)

    response = send(console, "too-many?seconds=3600")

    assert response.status_code == 503
    assert response["Retry-After"] == "3600"
    assert response.json()["retry_after"] == 3600


@pytest.mark.parametrize("path", ["deep-json?depth=5000", "invalid-utf8", "nul", "nul?raw=1"])
def test_odd_bodies_are_answered_and_shown_in_the_history(console, hostile_config, path):
    hostile_config()

    response = send(console, path)

    assert response.status_code == 200
    detail = console.get(f"/api/exchanges/{response.json()['id']}")
    assert detail.status_code == 200


def test_a_batch_of_bombs_answers_every_item_with_its_error(console, hostile_config, job_worker):
    hostile_config()
    calls = [{"method": "GET", "path": "bomb", "query": {"mb": 100, "n": n}} for n in range(16)]

    lines = ndjson(console.post_json("/api/batch", {"requests": calls, "concurrency": 16}))

    items, summary = lines[:-1], lines[-1]["summary"]
    assert [item["error"]["code"] for item in items] == ["response_too_large"] * 16
    assert summary["done"] == 16
    assert Exchange.objects.filter(error_code="response_too_large").count() == 16

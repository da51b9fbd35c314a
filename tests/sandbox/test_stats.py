import os

import pytest

from sandbox import stats
from tests.sandbox.helpers import basic, bearer, grant, post_token

pytestmark = pytest.mark.django_db


def test_grant_count_counts_rows_by_type(client):
    first = grant(client)
    grant(client)
    post_token(
        client,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        authorization=basic(),
    )

    assert stats.grant_count() == 3
    assert stats.grant_count("client_credentials") == 2
    assert stats.grant_count("refresh_token") == 1


def test_refused_grants_are_not_counted(client):
    post_token(client, {"grant_type": "client_credentials"}, authorization=basic("x", "y"))

    assert stats.grant_count() == 0


def test_snapshot_counts_requests_by_status(client):
    token = grant(client)["access_token"]
    client.get("/sandbox/api/whoami", headers=bearer(token))
    client.get("/sandbox/api/whoami")
    client.get("/sandbox/api/whoami?status=503", headers=bearer(token))

    snapshot = stats.snapshot()

    assert snapshot["requests"] == {
        "total": 4,
        "by_status": {"200": 2, "401": 1, "503": 1},
    }
    assert snapshot["grants"] == {"client_credentials": 1, "refresh_token": 0, "total": 1}
    assert snapshot["pid"] == os.getpid()


def test_stats_endpoints_do_not_count_themselves(client):
    client.get("/sandbox/stats")
    client.post("/sandbox/stats/reset")

    assert stats.snapshot()["requests"]["total"] == 0


def test_reset_clears_request_counters_but_keeps_grants(client):
    grant(client)
    client.get("/sandbox/nothing")

    stats.reset()

    assert stats.snapshot()["requests"] == {"total": 0, "by_status": {}}
    assert stats.grant_count() == 1

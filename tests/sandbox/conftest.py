import pytest

from sandbox import stats
from tests.sandbox.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    ODD_CLIENT_ID,
    ODD_CLIENT_SECRET,
    auth_headers,
)


@pytest.fixture(autouse=True)
def sandbox_test_settings(settings):
    """Known clients, and the sandbox mounted whatever POC_SANDBOX says."""
    settings.ROOT_URLCONF = "tests.sandbox.urls"
    settings.SANDBOX = {
        "CLIENTS": {CLIENT_ID: CLIENT_SECRET, ODD_CLIENT_ID: ODD_CLIENT_SECRET},
        "TOKEN_LIFETIME": 3600,
    }
    return settings


@pytest.fixture(autouse=True)
def fresh_counters():
    stats.reset()
    yield
    stats.reset()


@pytest.fixture
def headers(client, db):
    """Authorization headers with a valid bearer token."""
    return auth_headers(client)

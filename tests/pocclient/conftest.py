"""Fixtures for the console: a user, logged-in and anonymous clients, an unreachable API."""

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from api_client import tokens

from .helpers import ConsoleClient

PASSWORD = "console-test-password-1"


@pytest.fixture
def user(db, settings):
    # A fast hasher: the default one takes a third of a second per password, by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_user("engineer", password=PASSWORD, is_staff=True)


@pytest.fixture
def console(user) -> ConsoleClient:
    client = ConsoleClient()
    client.force_login(user)
    return client


@pytest.fixture
def anonymous(db) -> ConsoleClient:
    return ConsoleClient()


@pytest.fixture
def nowhere(settings, closed_port) -> Iterator[str]:
    """POC_API pointed at a closed port: anything sent would fail, and be recorded, loudly."""
    root = f"http://127.0.0.1:{closed_port}"
    settings.POC_API = {
        **settings.POC_API,
        "BASE_URL": f"{root}/api/",
        "TOKEN_URL": f"{root}/token",
        "RETRIES": 0,
    }
    tokens.clear_cache()
    yield root
    tokens.clear_cache()

"""Fixtures shared by the whole suite.

Tests that talk HTTP use pytest-django's ``live_server``: a real threaded server on
127.0.0.1 serving this project, sandbox included. Using it makes a test transactional
(``transaction=True``), which is what tests with threads need anyway: every thread has its
own connection and sees only committed data.
"""

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import override_settings

from api_client import connections, tokens
from api_client.client import ApiClient, reset_client
from api_client.conf import ApiSettings, api_settings
from api_client.ledger import LEDGER
from pocclient.settings import env_list
from sandbox import stats
from tests.helpers.hostile import CONFIG, HostileServer, serve_hostile

# The run's key for secrets at rest (pytest-django turns DEBUG off, so there is no development
# key). Child processes (manage.py, workers, gunicorn) inherit it from the environment; this
# process read its settings before this file, so the fixture below gives it the same key.
os.environ.setdefault("POC_ENCRYPTION_KEY", Fernet.generate_key().decode())


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Test databases of this run's own (``.test-db-run<pid>.sqlite3``, ``test_<name>_run<pid>``
    on PostgreSQL): two runs at once on one machine, two engineers' or CI's and yours, must
    never share one."""
    suffix = f"run{os.getpid()}"
    for database in settings.DATABASES.values():
        test = database.setdefault("TEST", {})
        if database["ENGINE"].endswith("sqlite3"):
            name = Path(test.get("NAME") or ".test-db.sqlite3")
            test["NAME"] = str(name.with_name(f"{name.stem}-{suffix}{name.suffix}"))
        else:
            test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_{suffix}"


@pytest.fixture(autouse=True, scope="session")
def stop_the_ledger_at_the_end(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The ledger's writer keeps a database connection while it works; PostgreSQL will not
    drop the test database while it is open, so the writer stops first (this fixture's
    teardown comes before that of ``django_db_setup``, which it asks for)."""
    yield
    LEDGER.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A test's last calls may end after it returns (their completions are written later):
    they are written while its database is still there, before its fixtures are torn down
    (on PostgreSQL a late write would deadlock with the flush's TRUNCATE)."""
    LEDGER.flush(timeout=30)
    return (yield)


@pytest.fixture(autouse=True)
def no_embedded_worker(settings) -> None:
    """Jobs run where a test says (a Runner, a worker process), not in a worker that the
    first request of a test would start in this process."""
    settings.POC_EMBEDDED_WORKER = False


@pytest.fixture(autouse=True)
def close_shared_client() -> Iterator[None]:
    """Close the process's shared client (the one views and commands use) after each test.

    Its keep-alive connections to the live server keep server threads, and their database
    connections, alive: PostgreSQL would then refuse to drop the test database.
    """
    yield
    reset_client()
    connections.forget()  # a flushed database leaves no signal behind


@pytest.fixture(autouse=True, scope="session")
def encryption_key() -> Iterator[None]:
    with override_settings(POC_ENCRYPTION_KEYS=env_list("POC_ENCRYPTION_KEY", "")):
        yield


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing() -> Iterator[None]:
    """admin_client logs in a new superuser per test: PBKDF2 would cost ~0.3 s each time."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def sandbox_root(live_server) -> str:
    return f"{live_server.url}/sandbox/"


@pytest.fixture
def api_config(sandbox_root: str, settings) -> Iterator[ApiSettings]:
    """POC_API pointed at the live sandbox, with short timeouts and no retry back-off."""
    settings.POC_API = {
        **settings.POC_API,
        "BASE_URL": f"{sandbox_root}api/",
        "TOKEN_URL": f"{sandbox_root}oauth/token",
        "CLIENT_ID": "sandbox-client",
        "CLIENT_SECRET": "sandbox-secret",
        "CONNECT_TIMEOUT": 2.0,
        "READ_TIMEOUT": 5.0,
        "BACKOFF_FACTOR": 0.0,
        "RETRY_AFTER_MAX": 3,
    }
    tokens.clear_cache()
    stats.reset()
    yield api_settings()
    tokens.clear_cache()


@pytest.fixture
def api(api_config: ApiSettings) -> Iterator[ApiClient]:
    client = ApiClient(api_config)
    yield client
    client.close()


@pytest.fixture
def configure_api(api_config: ApiSettings, settings):
    """Change POC_API keys for one test; returns a fresh client built from them."""
    clients: list[ApiClient] = []

    def configure(**changes) -> ApiClient:
        settings.POC_API = {**settings.POC_API, **changes}
        tokens.clear_cache()
        client = ApiClient(api_settings())
        clients.append(client)
        return client

    yield configure
    for client in clients:
        client.close()


@pytest.fixture
def sandbox_settings(settings):
    """Change SANDBOX keys (token lifetime, refresh tokens, ...) for one test."""

    def configure(**changes) -> None:
        settings.SANDBOX = {**settings.SANDBOX, **changes}

    return configure


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- a hostile API (tests/helpers/hostile.py) ------------------------------------------------

HOSTILE_ID, HOSTILE_SECRET = CONFIG["client_id"], CONFIG["client_secret"]


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with serve_hostile() as server:
        yield server


@pytest.fixture
def hostile_config(hostile: HostileServer, settings) -> Callable[..., ApiClient]:
    """``configure(**POC_API keys)``: POC_API pointed at the hostile server (for views and
    commands too); returns a fresh client built from it."""
    clients: list[ApiClient] = []

    def configure(**changes: object) -> ApiClient:
        settings.POC_API = {
            **settings.POC_API,
            "BASE_URL": f"{hostile.url}/api/",
            "TOKEN_URL": f"{hostile.url}/oauth/token",
            "CLIENT_ID": HOSTILE_ID,
            "CLIENT_SECRET": HOSTILE_SECRET,
            "CONNECT_TIMEOUT": 2.0,
            "READ_TIMEOUT": 30.0,
            "BACKOFF_FACTOR": 0.0,
            "RETRIES": 0,
            **changes,
        }
        tokens.clear_cache()
        client = ApiClient(api_settings())
        clients.append(client)
        return client

    yield configure
    for client in clients:
        client.close()
    tokens.clear_cache()


@pytest.fixture
def hostile_client(hostile_config) -> ApiClient:
    return hostile_config()

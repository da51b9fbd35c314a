"""Fixtures for the console: users (with both of the console's permissions, with one, with
none), logged-in and anonymous clients, an unreachable API, a jobs worker in this process,
and a real browser (Playwright driving Debian's chromium) on the live server."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client

from api_client import tokens
from jobs.workers import EmbeddedWorker
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS

from .helpers import ConsoleClient

PASSWORD = "console-test-password-1"
CONSOLE_GROUP = "Console users"
SEND = "send_request"
VIEW = "view_exchange"


def console_users_group() -> Group:
    """The group ``migrate`` makes (``api_client.permissions``), with both permissions."""
    group, _ = Group.objects.get_or_create(name=CONSOLE_GROUP)
    assert set(group.permissions.values_list("codename", flat=True)) == {SEND, VIEW}
    return group


def api_permissions(*codenames: str) -> list[Permission]:
    return list(
        Permission.objects.filter(content_type__app_label="api_client", codename__in=codenames)
    )


def make_user(username: str, *codenames: str, group: bool = False):
    """A staff user with exactly these api_client permissions (or the group's)."""
    made = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    if group:
        made.groups.add(console_users_group())
    made.user_permissions.add(*api_permissions(*codenames))
    return made


@pytest.fixture
def fast_hasher(settings) -> None:
    # The default hasher takes a third of a second per password, by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(db, fast_hasher):
    """``engineer``, in the "Console users" group: may send and read."""
    return make_user("engineer", group=True)


@pytest.fixture
def outsider(db, fast_hasher):
    """Staff, logged in, and no permission of the console's."""
    return make_user("outsider")


@pytest.fixture
def viewer(db, fast_hasher):
    """May read the history, exchanges and token (``view_exchange``), not send."""
    return make_user("viewer", VIEW)


@pytest.fixture
def sender(db, fast_hasher):
    """May send (``send_request``), not read the history."""
    return make_user("sender", SEND)


def client_for(user) -> ConsoleClient:
    client = ConsoleClient()
    client.force_login(user)
    return client


@pytest.fixture
def console(user) -> ConsoleClient:
    return client_for(user)


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


@pytest.fixture
def job_worker(transactional_db) -> Iterator[EmbeddedWorker]:
    """A jobs worker in this process, as the web process runs one (``POC_EMBEDDED_WORKER``):
    ``POST /api/batch`` and ``POST /api/jobs`` make jobs that it runs. It looks for tasks every
    50 ms rather than every second, so that a test's batch does not wait for it."""
    worker = EmbeddedWorker()
    worker.set_interval(0.05)
    worker.start()
    yield worker
    worker.stop()
    worker.upkeep.join(10)  # its last beat lands before the test's data is flushed


# --- the browser ------------------------------------------------------------------------------
# Playwright drives Debian's chromium (Playwright's own browser download does not work here).
# Where chromium is missing the browser tests skip, unless POC_REQUIRE_BROWSER=1 (CI) makes
# that a failure: in CI a browser test must run.

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


def browser_unavailable(reason: str) -> None:
    """Skip the browser tests, or fail them when POC_REQUIRE_BROWSER=1 (CI)."""
    if os.environ.get("POC_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{reason}, and POC_REQUIRE_BROWSER=1 requires the browser tests to run.",
            pytrace=False,
        )
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        browser_unavailable(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("playwright is not installed (pip install -r requirements-dev.txt)")
    # Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM
    # calls from the test body; they are still synchronous, so allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, browser, live_server, api_config):
    """A fresh browser page on the live server; a screenshot lands in test-artifacts/ on failure.

    The page's JavaScript errors and console errors (CSP violations among them) fail the test.
    """
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message) -> None:
        # The browser logs every 4xx/5xx answer; those of the JSON API are expected in tests
        # of bad input, and the page shows them. Anything else (CSP violations too) is a bug.
        url = message.location.get("url", "")
        expected = message.text.startswith("Failed to load resource") and re.search(
            r"/(api/|_token_refresh)", url
        )
        if message.type == "error" and not expected:
            problems.append(f"console {message.type}: {message.text} ({url})")

    page.on("console", on_console)
    page.problems = problems
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    if problems:
        pytest.fail("The page reported errors:\n" + "\n".join(problems))


def log_in(page, user, live_server) -> None:
    """Give the page's browser a logged-in session of ``user`` (the cookie is set directly)."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


@pytest.fixture
def logged_in(page, user, live_server):
    """The page's browser holds a logged-in session of ``user``."""
    log_in(page, user, live_server)
    return page


@pytest.fixture
def console_page(logged_in):
    """The console, opened by a logged-in user and ready."""
    logged_in.goto("/")
    logged_in.wait_for_selector("body[data-ready=true]")
    return logged_in

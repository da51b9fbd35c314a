"""The console's connection picker, in a real browser (headless chromium driven by Playwright)
on the live server: two connections, ``default`` (the environment's, the live sandbox) and
``production``, a protected row with a colour that points at the same sandbox. The picker
lists both, the header and the buttons that send name the chosen one and wear its colour, the
choice survives a reload, every request the page makes names it, and a batch on the protected
one asks first.

No worker runs: a batch makes a job (what the test checks) that nobody takes up.
"""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group

from api_client.models import Connection, Exchange
from jobs.models import Job

from .conftest import CONSOLE_GROUP, browser_unavailable

try:
    from playwright.sync_api import expect
except ImportError:
    browser_unavailable("playwright is not installed (pip install -r requirements-dev.txt)")

pytestmark = pytest.mark.browser

PRODUCTION = "production"
COLOUR = "#b00020"
COLOUR_RGB = "rgb(176, 0, 32)"


@pytest.fixture
def production(user, sandbox_root) -> Connection:
    """A protected, coloured connection to the live sandbox that ``engineer`` may use."""
    connection = Connection.objects.create(
        name=PRODUCTION,
        base_url=f"{sandbox_root}api/",
        token_url=f"{sandbox_root}oauth/token",
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        colour=COLOUR,
        protected=True,
        enabled=True,
    )
    group = Group.objects.get(name=CONSOLE_GROUP)
    connection.send_groups.add(group)
    connection.read_groups.add(group)
    return connection


def open_console(page) -> None:
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")


def choose(page, name: str) -> None:
    page.select_option("#connection-picker", name)
    expect(page.locator("#connection-badge")).to_have_attribute("data-connection", name)


def css(page, selector: str, prop: str) -> str:
    return page.eval_on_selector(
        selector, "(node, prop) => getComputedStyle(node).getPropertyValue(prop)", prop
    )


def test_the_picker_lists_both_and_the_header_shows_the_choice_in_its_colour(logged_in, production):
    page = logged_in
    open_console(page)

    options = page.locator("#connection-picker option")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [
        "default",
        PRODUCTION,
    ]
    badge = page.locator("#connection-badge")
    expect(badge).to_have_attribute("data-connection", "default")
    expect(page.locator("#send")).to_have_text("Send to default")
    expect(page.locator("#batch-run")).to_have_text("Run batch on default")

    choose(page, PRODUCTION)

    expect(badge).to_contain_text(PRODUCTION)
    expect(badge).to_have_attribute("data-protected", "true")
    assert css(page, "#connection-badge .swatch", "background-color") == COLOUR_RGB
    expect(page.locator("#send")).to_have_text("Send to production")
    expect(page.locator("#batch-run")).to_have_text("Run batch on production")
    for button in ("#send", "#batch-run"):
        expect(page.locator(button)).to_have_attribute("data-connection", PRODUCTION)
        assert COLOUR_RGB in css(page, button, "box-shadow"), button
        expect(page.locator(button)).to_be_enabled()

    page.reload()  # the choice is kept
    page.wait_for_selector("body[data-ready=true]")

    expect(badge).to_have_attribute("data-connection", PRODUCTION)
    expect(page.locator("#connection-picker")).to_have_value(PRODUCTION)
    expect(page.locator("#send")).to_have_text("Send to production")


def test_a_stored_choice_no_longer_offered_falls_back_to_the_pages_own(logged_in, production):
    page = logged_in
    open_console(page)
    choose(page, PRODUCTION)
    production.enabled = False
    production.save()

    page.reload()
    page.wait_for_selector("body[data-ready=true]")

    expect(page.locator("#connection-badge")).to_have_attribute("data-connection", "default")
    expect(page.locator("#send")).to_have_text("Send to default")


def test_every_request_the_page_makes_names_the_chosen_connection(logged_in, production):
    page = logged_in
    open_console(page)
    choose(page, PRODUCTION)
    seen: list = []
    page.on(
        "request",
        lambda r: seen.append(r) if "/api/" in r.url or "/_token_refresh" in r.url else None,
    )

    page.reload()  # the token, the history and the jobs of the chosen connection
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#token-state")).to_have_attribute("data-state", "valid")
    page.click("#token-refresh")
    expect(page.locator("#token-message")).to_contain_text("New token at")
    page.fill("#path", "echo/named")
    page.click("#send")
    expect(page.locator("#response-status")).to_have_text("200")
    expect(page.locator("#history-rows")).to_contain_text("/echo/named")

    asked = {(urlsplit(r.url).path, r.method) for r in seen}
    for endpoint in ("/api/token", "/api/exchanges", "/api/jobs"):
        assert (endpoint, "GET") in asked, endpoint
    assert ("/_token_refresh", "POST") in asked
    assert ("/api/send", "POST") in asked
    for request in seen:
        if request.method == "GET":
            assert parse_qs(urlsplit(request.url).query).get("connection") == [PRODUCTION], (
                request.url
            )
        else:
            assert json.loads(request.post_data)["connection"] == PRODUCTION, request.url


def test_a_send_after_choosing_a_connection_is_recorded_on_it(logged_in, production):
    page = logged_in
    open_console(page)
    choose(page, PRODUCTION)
    page.fill("#path", "echo/on-production")

    page.click("#send")

    expect(page.locator("#response-status")).to_have_text("200")
    expect(page.locator("#send")).to_have_text("Send to production")
    sent = Exchange.objects.filter(kind=Exchange.Kind.API).get()
    assert (sent.connection, sent.path) == (PRODUCTION, "/echo/on-production")


def test_a_batch_on_a_protected_connection_asks_first_and_declining_sends_nothing(
    logged_in, production
):
    page = logged_in
    open_console(page)
    choose(page, PRODUCTION)
    page.fill("#path", "echo")
    page.fill("#batch-count", "3")
    dialog = page.locator("#connection-confirm")

    page.click("#batch-run")

    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(PRODUCTION)
    expect(dialog).to_contain_text("3 requests")
    page.click("#connection-confirm-cancel")
    expect(dialog).to_be_hidden()
    expect(page.locator("#batch-errors")).to_contain_text("nothing was sent to production")
    assert not Job.objects.exists()

    page.click("#batch-run")
    expect(dialog).to_be_visible()
    page.click("#connection-confirm-run")

    expect(page.locator("#job")).to_be_visible()
    job = Job.objects.get()
    expect(page.locator("#job-meta")).to_contain_text(job.key)
    assert (job.connection, job.total) == (PRODUCTION, 3)


def test_a_batch_on_an_unprotected_connection_does_not_ask(logged_in, production):
    page = logged_in
    open_console(page)
    page.fill("#path", "echo")
    page.fill("#batch-count", "2")

    page.click("#batch-run")

    expect(page.locator("#job")).to_be_visible()
    assert page.locator("#connection-confirm").is_hidden()
    assert Job.objects.get().connection == "default"

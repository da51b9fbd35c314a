"""The console in a real browser (headless chromium driven by Playwright) on the live server.

Each test fails on any JavaScript error or console error in the page, CSP violations included.
"""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from api_client.models import Exchange, Token
from jobs.models import Job

from .conftest import PASSWORD, browser_unavailable, log_in

try:
    from playwright.sync_api import expect
except ImportError:
    browser_unavailable("playwright is not installed (pip install -r requirements-dev.txt)")

pytestmark = pytest.mark.browser


def api_exchanges():
    return Exchange.objects.filter(kind=Exchange.Kind.API)


def test_log_in_and_see_the_token_state(page, user):
    page.goto("/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/$"))
    page.fill("#id_username", "engineer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")

    page.wait_for_selector("body[data-ready=true]")
    # No token yet: the page asks for one by itself.
    page.wait_for_selector("#token-state[data-state=valid]")
    assert re.fullmatch(r"59:[0-5]\d|1:00:00|60:00", page.inner_text("#token-countdown"))
    assert page.inner_text("#token-obtained") != "—"
    assert page.inner_text("#token-refresh-count") == "1"
    assert page.inner_text("#token-error") == "—"

    page.click("#token-refresh")
    page.wait_for_selector("#token-refresh-count:text('2')")
    assert page.inner_text("#token-message").startswith("New token at")


def test_the_page_refreshes_the_token_by_itself_before_it_expires(sandbox_settings, logged_in):
    # A 4-second token is due for refresh after 2 seconds (the leeway is at most half its life).
    sandbox_settings(TOKEN_LIFETIME=4)
    page = logged_in
    page.goto("/")

    expect(page.locator("#token-refresh-count")).to_have_text("1")
    expect(page.locator("#token-refresh-count")).to_have_text("2", timeout=8_000)
    expect(page.locator("#token-state")).to_have_attribute("data-state", "valid")
    assert page.inner_text("#token-message").startswith("New token at")


def test_send_a_request_and_read_its_response(console_page):
    page = console_page
    page.select_option("#method", "POST")
    page.fill("#path", "echo/console")
    page.click("[data-add=query-rows]")
    page.fill("#query-rows .kv-name", "lang")
    page.fill("#query-rows .kv-value", "en")
    page.click("[data-tab=headers]")
    page.click("[data-add=header-rows]")
    page.fill("#header-rows .kv-name", "X-Trace")
    page.fill("#header-rows .kv-value", "from-the-browser")
    page.click("[data-tab=body]")
    page.fill("#body", '{"name": "widget", "size": 3}')
    assert page.inner_text("#body-status") == "Valid JSON."

    page.click("#send")

    page.wait_for_selector("#response-line:not([hidden])")
    assert page.inner_text("#response-status") == "200"
    assert re.fullmatch(r"[\d.]+ ms", page.inner_text("#response-duration"))
    echoed = json.loads(page.inner_text("#response-body"))
    assert echoed["json"] == {"name": "widget", "size": 3}
    assert echoed["query"] == {"lang": ["en"]}
    assert echoed["headers"]["X-Trace"] == "from-the-browser"
    exchange = api_exchanges().get()
    assert page.get_attribute("#response-admin", "href") == (
        f"/admin/api_client/exchange/{exchange.pk}/change/"
    )
    page.click("[data-tab=rheaders]")
    assert "application/json" in page.inner_text("#response-headers")

    page.click("[data-tab=curl]")
    curl = page.inner_text("#curl")
    assert curl.startswith("curl 'http")  # --data-raw makes it a POST: no -X (test_curl.py)
    assert "/sandbox/api/echo/console?lang=en" in curl
    assert '"Authorization: Bearer $API_TOKEN"' in curl
    assert """--data-raw '{"name":"widget","size":3}'""" in curl


def test_bad_input_is_shown_and_nothing_is_sent(console_page):
    page = console_page
    page.select_option("#method", "POST")
    page.click("[data-tab=body]")
    page.fill("#body", '{"name": ')
    assert "not valid JSON" in page.inner_text("#body-status")

    page.click("#send")
    assert "json: the body is not valid JSON" in page.inner_text("#builder-errors")

    page.fill("#body", "")
    page.fill("#path", "../oauth/token")
    page.click("#send")
    page.wait_for_selector("#builder-errors li:has-text('path:')")
    assert not api_exchanges().exists()


def test_run_a_batch_of_50_at_concurrency_8(console_page, job_worker):
    page = console_page
    page.fill("#path", "echo")
    page.click("[data-add=query-rows]")
    page.fill("#query-rows .kv-name", "delay")
    page.fill("#query-rows .kv-value", "0.02")
    page.fill("#batch-count", "50")
    page.fill("#batch-concurrency", "8")
    # Record every value the progress bar takes: it never goes back. (That it moves through
    # values between 0 and 50, rather than jumping, depends on when the page polls a job
    # this fast; test_jobs_console.py shows a job part done, as it stands in the database.)
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const bar = document.querySelector('#batch-progress');
            const record = () => window.progressSeen.push(Number(bar.ariaValueNow));
            new MutationObserver(record)
                .observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
        }"""
    )

    page.click("#batch-run")

    page.wait_for_selector("#batch-summary:not([hidden])")
    progress = page.locator("#batch-progress")
    assert progress.get_attribute("aria-valuenow") == "50"
    assert progress.get_attribute("data-percent") == "100"
    assert progress.get_attribute("data-failing") == "false"
    assert page.inner_text("#batch-progress-text") == "50 / 50 (100%)"
    seen = page.evaluate("window.progressSeen")
    assert seen == sorted(seen)
    assert page.inner_text("#sum-total") == "50 of 50"
    assert (page.inner_text("#sum-ok"), page.inner_text("#sum-failed")) == ("50", "0")
    for cell in ("#sum-p50", "#sum-p95", "#sum-max"):
        assert re.fullmatch(r"[\d.]+ ms", page.inner_text(cell))
    bars = page.locator("#batch-histogram rect.bar")
    assert bars.count() >= 2
    heights = [float(bars.nth(n).get_attribute("height")) for n in range(bars.count())]
    assert max(heights) > 0
    assert page.locator("#batch-histogram .marker.p95").count() == 1
    expect(page.locator("#batch-results tr")).to_have_count(50)
    assert "200 \u00d7 50" in page.inner_text("#batch-counts")
    assert api_exchanges().count() == 50
    assert api_exchanges().values("batch_id").distinct().count() == 1
    # The batch is a job, and the page's address names it.
    job = Job.objects.get()
    assert (job.state, job.total, job.concurrency) == ("finished", 50, 8)
    assert page.url.endswith(f"/?job={job.key}")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "finished")


def test_history_filters_and_replays_an_exchange(console_page, api):
    sent = api.post("echo/replay-me", json={"n": 1}, headers={"X-Trace": "r-1"})
    api.get("items/999999")
    page = console_page
    page.click("#history-refresh")
    rows = page.locator("#history-rows tr")
    rows.first.wait_for()
    assert rows.count() == 2

    page.click("#history [data-status='4xx']")
    expect(rows).to_have_count(1)
    assert "/items/999999" in page.inner_text("#history-rows")
    page.click("#history [data-status='']")
    expect(rows).to_have_count(2)

    page.click(f"#history-rows tr[data-id='{sent.exchange_id}'] .replay")

    page.wait_for_selector("#replay-note:not([hidden])")
    assert page.input_value("#method") == "POST"
    assert page.input_value("#path") == "echo/replay-me"
    assert json.loads(page.input_value("#body")) == {"n": 1}
    assert page.input_value("#header-rows .kv-name") == "X-Trace"
    assert "Recorded" in page.inner_text("#response-source")

    page.click("#send")

    page.wait_for_selector("#response-source", state="hidden")
    assert page.inner_text("#response-status") == "200"
    replayed = api_exchanges().order_by("-id").first()
    assert replayed.pk != sent.exchange_id
    assert (replayed.method, replayed.path, replayed.request_body) == (
        "POST",
        "/echo/replay-me",
        '{"n": 1}',
    )
    page.wait_for_selector(f"#history-rows tr[data-id='{replayed.pk}']")


def test_an_empty_history_says_whether_anything_was_sent_or_the_filter_matches_nothing(
    console_page,
):
    page = console_page
    empty = page.locator("#history-empty")

    expect(empty).to_have_text("No exchanges yet: send a request above.")
    page.click("#history [data-status='5xx']")
    expect(empty).to_have_text("No exchanges match this filter.")
    page.click("#history [data-status='']")
    expect(empty).to_have_text("No exchanges yet: send a request above.")


@pytest.mark.parametrize("width", [1400, 820])
def test_the_token_state_stays_a_badge_at_any_width(console_page, width):
    page = console_page
    page.set_viewport_size({"width": width, "height": 1000})

    badge = page.locator("#token-state").bounding_box()
    panel = page.locator("#token-panel").bounding_box()
    text_width = page.evaluate(
        """() => {
            const range = document.createRange();
            range.selectNodeContents(document.querySelector('#token-state'));
            return range.getBoundingClientRect().width;
        }"""
    )
    assert badge["width"] < text_width + 40, (badge, text_width)  # its text and its padding
    assert badge["width"] < panel["width"] / 4


def test_the_token_admin_list_stays_within_a_1400_px_page(page, admin_user, live_server):
    now = timezone.now()
    Token.objects.create(
        credential_key="k" * 64,
        token_url="https://login.example/" + "tenant-" * 40 + "/oauth2/v2.0/token",
        client_id="pocclient-integration-client",
        access_token="a" * 900,
        expires_at=now + timedelta(minutes=59),
        obtained_at=now - timedelta(minutes=1),
        refresh_count=12345,
        last_error="The token endpoint refused the client: " + "invalid_client " * 40,
        last_error_at=now - timedelta(hours=2),
    )
    log_in(page, admin_user, live_server)
    # The admin's pages ask for /favicon.ico, which the console's pages link elsewhere.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))

    page.goto("/admin/api_client/token/")

    table = page.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= 1400
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    # Nor does the list scroll sideways inside its box.
    assert page.evaluate(
        "(box => box.scrollWidth <= box.clientWidth)(document.querySelector('.results'))"
    )
    cut = page.locator("td.field-short_token_url span")
    assert cut.inner_text().endswith("…")
    assert cut.get_attribute("title").endswith("/oauth2/v2.0/token")

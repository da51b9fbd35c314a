"""Jobs in the console, in a real browser (headless chromium driven by Playwright) on the live
server: a batch's live progress, which survives a reload and the server going away; the
buttons each state and permission allow; the results table; the job list.

No worker runs in these tests unless a test runs one (``Runner`` in this thread, sending to
the live sandbox), so what the page shows is what the test put in the database: the page
reads it all over HTTP, as it would from any worker. Every test fails on any JavaScript or
console error in the page, CSP violations included.
"""

import re

import pytest
from django.utils import timezone

from api_client.client import get_client
from api_client.models import Exchange
from jobs.models import Item, Job
from jobs.planning import plan
from jobs.runner import Runner

from .conftest import browser_unavailable, log_in

try:
    from playwright.sync_api import expect
except ImportError:
    browser_unavailable("playwright is not installed (pip install -r requirements-dev.txt)")

pytestmark = pytest.mark.browser


def planned(count: int, **options) -> Job:
    calls = [{"method": "GET", "path": "echo", "query": {"n": n}} for n in range(count)]
    return plan(get_client(), list(enumerate(calls, 1)), **options)


def settle(job: Job, indexes, state: str = "answered", status=200, duration=10.0, code="") -> None:
    """Write results onto items as a worker would (no call is made)."""
    Item.objects.filter(job=job, index__in=list(indexes)).update(
        state=state,
        status=status,
        duration_ms=duration,
        error_code=code,
        error="it broke off" if code else "",
        finished_at=timezone.now(),
    )


def open_job(page, job: Job) -> None:
    page.goto(f"/?job={job.key}")
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#job-meta")).to_contain_text(job.key)


def refused_responses(page) -> list[str]:
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 403 else None)
    return refused


# --- a batch's live progress --------------------------------------------------------------


def test_a_batchs_progress_survives_a_reload_and_ends_when_its_job_does(console_page):
    page = console_page
    page.fill("#path", "echo")
    page.fill("#batch-count", "40")
    page.fill("#batch-concurrency", "2")

    page.click("#batch-run")

    expect(page.locator("#job-state")).to_have_attribute("data-state", "running")
    job = Job.objects.get()
    assert (job.total, job.concurrency, job.name) == (40, 2, "GET echo \u00d7 40")
    assert page.url.endswith(f"/?job={job.key}")
    expect(page.locator("#batch-progress-text")).to_have_text("0 / 40 (0%)")
    # No worker runs: the page says so, and what starts one.
    expect(page.locator("#job-warning")).to_contain_text("manage.py db_worker")

    # A worker's first results, as the database has them: the page follows.
    settle(job, range(15))
    settle(job, [15, 16], state="failed", status=None, duration=None, code="timeout")
    expect(page.locator("#batch-progress-text")).to_have_text("17 / 40 (42%)")
    progress = page.locator("#batch-progress")
    expect(progress).to_have_attribute("data-failing", "true")  # the bar's colour says so
    expect(page.locator("#batch-counts")).to_contain_text("200 \u00d7 15")
    expect(page.locator("#batch-counts")).to_contain_text("timeout \u00d7 2")
    expect(page.locator("#job-states")).to_contain_text("planned 23")
    expect(page.locator("#job-rate")).to_have_text(re.compile(r"^[\d.]+/s$"))
    expect(page.locator("#job-eta")).to_have_text(re.compile(r"^(\d+ h )?\d+(:| min)"))
    assert page.locator("#batch-summary").is_hidden()

    page.reload()
    page.wait_for_selector("body[data-ready=true]")

    expect(page.locator("#batch-progress-text")).to_have_text("17 / 40 (42%)")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "running")
    expect(page.locator("#job-meta")).to_contain_text(job.key)
    expect(page.locator(f"#jobs-rows tr[data-key='{job.key}']")).to_have_attribute(
        "aria-current", "true"
    )

    Runner(job.pk).run()  # a worker takes the job up and finishes it

    expect(page.locator("#job-state")).to_have_attribute("data-state", "finished")
    expect(page.locator("#batch-progress-text")).to_have_text("40 / 40 (100%)")
    expect(page.locator("#batch-summary")).to_be_visible()
    assert page.inner_text("#sum-total") == "40 of 40"
    assert (page.inner_text("#sum-ok"), page.inner_text("#sum-failed")) == ("38", "2")
    assert page.locator("#job-warning").is_hidden()
    assert page.locator("#batch-histogram rect.bar").count() >= 1
    expect(page.locator("#job-resend-failed")).to_have_text("Send 2 failed again")
    for hidden in ("#job-pause", "#job-resume", "#job-cancel", "#job-resend-unknown"):
        expect(page.locator(hidden)).to_be_hidden()
    assert Exchange.objects.filter(batch_id=job.key).count() == 23  # only the rest was sent


def test_the_page_keeps_following_a_job_while_the_server_is_away(console_page):
    job = planned(10)
    page = console_page
    open_job(page, job)
    expect(page.locator("#batch-progress-text")).to_have_text("0 / 10 (0%)")

    page.route("**/api/jobs/**", lambda route: route.abort())  # the server is gone
    expect(page.locator("#job-message")).to_contain_text("Lost contact with the server")
    settle(job, range(4))
    page.unroute("**/api/jobs/**")  # and back

    expect(page.locator("#batch-progress-text")).to_have_text("4 / 10 (40%)")
    expect(page.locator("#job-message")).to_have_text("")


def test_a_bad_list_is_named_by_line_and_nothing_is_made(console_page):
    page = console_page
    page.check("input[name=batch-source][value=jsonl]")
    page.fill(
        "#batch-jsonl", '{"method": "GET", "path": "echo"}\n{"method": "BREW", "path": "x"}\n'
    )

    page.click("#batch-run")

    errors = page.locator("#batch-errors")
    expect(errors).to_contain_text("1 of the 2 requests are invalid.")
    expect(errors).to_contain_text("line 2, method: Unknown method 'BREW'")
    expect(errors).to_contain_text("Nothing was sent.")
    assert not Job.objects.exists()
    assert page.locator("#job").is_hidden()


def test_a_template_filled_from_a_csv_file_makes_a_job(console_page, tmp_path):
    data = tmp_path / "learners.csv"
    data.write_text("id,name\n7,Ada\n8,Bob\n9,Cy\n")
    page = console_page
    page.select_option("#method", "PUT")
    page.fill("#path", "echo/learners/{{id}}")
    page.click("[data-tab=body]")
    page.fill("#body", '{"name": "{{name}}"}')
    page.check("input[name=batch-source][value=data]")
    page.set_input_files("#batch-data", str(data))

    page.click("#batch-run")

    expect(page.locator("#job-name")).to_have_text("learners.csv into PUT echo/learners/{{id}}")
    expect(page.locator("#batch-progress-text")).to_have_text("0 / 3 (0%)")
    paths = list(Item.objects.order_by("index").values_list("path", "body"))
    assert paths == [
        ("/echo/learners/7", '{"name": "Ada"}'),
        ("/echo/learners/8", '{"name": "Bob"}'),
        ("/echo/learners/9", '{"name": "Cy"}'),
    ]


# --- the buttons ----------------------------------------------------------------------------


def test_pause_resume_and_cancel_are_offered_as_the_state_allows(console_page):
    job = planned(6)
    page = console_page
    open_job(page, job)
    pause, resume, cancel = (page.locator(f"#job-{name}") for name in ("pause", "resume", "cancel"))
    expect(pause).to_be_visible()
    expect(cancel).to_be_visible()
    expect(resume).to_be_hidden()

    pause.click()

    expect(page.locator("#job-state")).to_have_attribute("data-state", "paused")
    expect(resume).to_be_visible()
    expect(pause).to_be_hidden()
    assert Job.objects.get().state == "paused"

    resume.click()

    expect(page.locator("#job-state")).to_have_attribute("data-state", "running")
    assert Job.objects.get().state == "running"

    cancel.click()

    expect(page.locator("#job-state")).to_have_attribute("data-state", "cancelled")
    for button in (pause, resume, cancel):
        expect(button).to_be_hidden()
    expect(page.locator("#batch-counts")).to_contain_text("cancelled \u00d7 6")
    expect(page.locator("#batch-summary")).to_be_visible()
    assert Job.objects.get().counts()["cancelled"] == 6
    assert not Exchange.objects.filter(kind=Exchange.Kind.API).exists()


def test_failed_calls_are_sent_again_from_the_page(console_page):
    job = planned(5)
    settle(job, range(3))
    settle(job, [3, 4], state="failed", status=None, duration=None, code="connection_error")
    Job.objects.filter(pk=job.pk).update(state=Job.State.FINISHED, finished_at=timezone.now())
    page = console_page
    open_job(page, job)
    resend = page.locator("#job-resend-failed")
    expect(resend).to_have_text("Send 2 failed again")

    resend.click()

    expect(page.locator("#job-message")).to_have_text("2 sent again. The job is running.")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "running")
    assert job.counts()["planned"] == 2

    Runner(job.pk).run()

    expect(page.locator("#job-state")).to_have_attribute("data-state", "finished")
    expect(page.locator("#batch-progress")).to_have_attribute("data-failing", "false")
    expect(resend).to_be_hidden()
    sent = Exchange.objects.filter(kind=Exchange.Kind.API).values_list("path", flat=True)
    assert sorted(sent) == ["/echo?n=3", "/echo?n=4"]


def test_a_reader_follows_a_job_and_its_results_but_gets_no_buttons(page, viewer, live_server):
    job = planned(3)
    settle(job, [0])
    log_in(page, viewer, live_server)
    refused = refused_responses(page)

    open_job(page, job)

    expect(page.locator("#batch-progress-text")).to_have_text("1 / 3 (33%)")
    expect(page.locator("#job-actions")).to_contain_text("need api_client.send_request")
    for name in ("pause", "resume", "cancel", "resend-failed", "resend-unknown"):
        expect(page.locator(f"#job-{name}")).to_be_hidden()
    expect(page.locator("#batch-results tr")).to_have_count(3)
    assert refused == []


def test_a_sender_gets_the_buttons_but_no_results(page, sender, live_server):
    job = planned(3)
    log_in(page, sender, live_server)
    refused = refused_responses(page)

    open_job(page, job)

    expect(page.locator("#job-pause")).to_be_visible()
    expect(page.locator("#job-results-note")).to_contain_text("api_client.view_exchange")
    assert page.locator("#batch-details").count() == 0
    page.locator("#job-pause").click()
    expect(page.locator("#job-state")).to_have_attribute("data-state", "paused")
    assert refused == []


# --- results and the list -------------------------------------------------------------------


def test_results_sort_by_status_and_duration_and_link_each_exchange(console_page):
    job = planned(4)
    exchange = Exchange.objects.create(method="GET", url="http://x/echo", path="/echo?n=2")
    settle(job, [0], status=503, duration=30.0)
    settle(job, [1], status=200, duration=50.0)
    settle(job, [2], status=404, duration=5.0)
    Item.objects.filter(job=job, index=2).update(exchange_id=exchange.pk)
    page = console_page
    open_job(page, job)
    page.click("#batch-details summary")
    rows = page.locator("#batch-results tr")

    def order() -> list[str]:
        return [rows.nth(n).get_attribute("data-index") for n in range(rows.count())]

    expect(rows).to_have_count(4)
    assert order() == ["0", "1", "2", "3"]
    page.click("button.sort[data-sort=status]")
    expect(rows.first).to_have_attribute("data-index", "1")
    assert order() == ["1", "2", "0", "3"]  # 200, 404, 503, then no status
    page.click("button.sort[data-sort=status]")
    expect(rows.first).to_have_attribute("data-index", "0")
    assert order() == ["0", "2", "1", "3"]
    page.click("button.sort[data-sort=duration]")
    expect(rows.first).to_have_attribute("data-index", "2")
    assert order() == ["2", "0", "1", "3"]
    expect(page.locator("button.sort[data-sort=duration]")).to_have_attribute(
        "aria-sort", "ascending"
    )
    link = page.locator("#batch-results tr[data-index='2'] a")
    assert link.get_attribute("href") == f"/admin/api_client/exchange/{exchange.pk}/change/"
    assert re.search(r"format=csv&order=duration$", page.get_attribute("#job-csv", "href"))


def test_the_job_list_shows_state_and_progress_and_opens_a_job(console_page):
    running, finished, cancelled = planned(3, name="running one"), planned(2), planned(2)
    settle(running, [0])
    settle(finished, [0, 1])
    Job.objects.filter(pk=finished.pk).update(state=Job.State.FINISHED)
    Job.objects.filter(pk=cancelled.pk).update(state=Job.State.CANCELLED)
    page = console_page
    page.click("#jobs-refresh")
    rows = page.locator("#jobs-rows tr")
    expect(rows).to_have_count(3)

    row = page.locator(f"#jobs-rows tr[data-key='{running.key}']")
    expect(row).to_contain_text("running one")
    expect(row).to_contain_text("1 / 3")
    expect(row.locator(".badge")).to_have_attribute("data-state", "running")
    page.click("#jobs [data-job-state=cancelled]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-key", cancelled.key)
    page.click("#jobs [data-job-state='']")
    expect(rows).to_have_count(3)

    row.locator("button.open").click()

    expect(page.locator("#job-name")).to_have_text("running one")
    expect(page.locator("#batch-progress-text")).to_have_text("1 / 3 (33%)")
    assert page.url.endswith(f"/?job={running.key}")
    page.go_back()
    expect(page.locator("#job")).to_be_hidden()

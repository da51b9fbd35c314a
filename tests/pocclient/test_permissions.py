"""Who may do what in the console: ``api_client.send_request`` to send (and to force a token
refresh), ``api_client.view_exchange`` to read the history, the exchanges and the token;
either for a refresh when due. A refusal is a 403 in JSON that names what is missing, and sends
nothing; the page shows only what the user may use, and says why the rest is off."""

import json
import re

import pytest
from django.contrib.auth import get_user_model

from api_client.client import get_client
from api_client.models import Exchange, Token
from jobs.models import Job
from jobs.planning import plan
from sandbox import stats
from tests.helpers.exchanges import create_exchange

from .conftest import client_for, log_in
from .helpers import ndjson
from .test_views import tags_of

SEND = "api_client.send_request"
VIEW = "api_client.view_exchange"
EITHER = (SEND, VIEW)
SEND_LABEL = "api_client.send_request (Can send requests to the API)"
VIEW_LABEL = "api_client.view_exchange (Can view exchange)"
ASK = 'ask an administrator to add you to the "Console users" group.'

# name: (method, path, body, the permissions any one of which allows it)
ENDPOINTS = {
    "send": ("post", "/api/send", {"method": "GET", "path": "echo"}, (SEND,)),
    "batch": ("post", "/api/batch", {"requests": [{"method": "GET", "path": "echo"}]}, (SEND,)),
    "forced refresh": ("post", "/_token_refresh", {"force": True}, (SEND,)),
    "refresh when due": ("post", "/_token_refresh", {}, EITHER),
    "token status": ("get", "/api/token", None, (VIEW,)),
    "exchange list": ("get", "/api/exchanges", None, (VIEW,)),
    "exchange detail": ("get", "/api/exchanges/{id}", None, (VIEW,)),
    "job list": ("get", "/api/jobs", None, EITHER),
    "job progress": ("get", "/api/jobs/{job}", None, EITHER),
    "job results": ("get", "/api/jobs/{job}/results", None, (VIEW,)),
    "job results as CSV": ("get", "/api/jobs/{job}/results?format=csv", None, (VIEW,)),
    "make a job": ("post", "/api/jobs", {"requests": [{"method": "GET", "path": "echo"}]}, (SEND,)),
    "pause a job": ("post", "/api/jobs/{job}/pause", {}, (SEND,)),
    "send a job's failed items again": (
        "post",
        "/api/jobs/{job}/resend",
        {"state": "failed"},
        (SEND,),
    ),
}
# fixture: the permissions its user has
USERS = {
    "outsider": (),
    "viewer": (VIEW,),
    "sender": (SEND,),
    "user": EITHER,  # through the "Console users" group
    "superuser": EITHER,  # Django gives a superuser every permission
}


@pytest.fixture
def superuser(db, fast_hasher):
    return get_user_model().objects.create_superuser("root", password="x" * 12)


def call(client, endpoint: str, exchange_id: int, job_key: str = ""):
    method, path, body, _ = ENDPOINTS[endpoint]
    path = path.format(id=exchange_id, job=job_key)
    if method == "get":
        return client.get(path)
    return client.post_json(path, body)


# --- every endpoint, every kind of user -------------------------------------------------------


@pytest.mark.parametrize("who", USERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_each_endpoint_takes_its_permission_and_refuses_without_sending(
    request, api_config, endpoint, who
):
    client = client_for(request.getfixturevalue(who))
    recorded = create_exchange(path="/recorded-before")
    job = plan(get_client(), [(1, {"method": "GET", "path": "echo"})])  # planned, not sent
    needed = ENDPOINTS[endpoint][3]
    allowed = any(p in USERS[who] for p in needed)
    if allowed and endpoint == "batch":
        request.getfixturevalue("job_worker")

    response = call(client, endpoint, recorded.pk, job.key)

    if allowed:
        assert response.status_code == (201 if endpoint == "make a job" else 200)
        if response.streaming and endpoint == "batch":
            assert ndjson(response)[-1]["summary"]["ok"] == 1
        return
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    if endpoint == "forced refresh" and not USERS[who]:
        needed = EITHER  # refused at the door, before the body says force
    labels = " or ".join(SEND_LABEL if p == SEND else VIEW_LABEL for p in needed)
    assert f"needs the permission {labels}; {ASK}" in error["message"]
    assert response.json()["required"] == list(needed)
    # Nothing was sent or changed: no new exchange or job, no token asked for, no call
    # reached the sandbox.
    assert list(Exchange.objects.values_list("pk", flat=True)) == [recorded.pk]
    assert list(Job.objects.values_list("pk", "state")) == [(job.pk, "running")]
    assert not Token.objects.exists()
    assert stats.grant_count() == 0
    assert stats.request_counts()["total"] == 0


def test_a_refusal_names_the_endpoint(client_of_viewer, nowhere):
    error = client_of_viewer.post_json("/api/send", {"method": "GET", "path": "echo"}).json()

    assert error["error"]["message"] == f"POST /api/send needs the permission {SEND_LABEL}; {ASK}"


def test_a_forced_refresh_says_that_forcing_is_what_needs_the_permission(client_of_viewer, nowhere):
    error = client_of_viewer.post_json("/_token_refresh", {"force": True}).json()

    assert error["error"]["message"] == (
        f"A forced token refresh (force: true) needs the permission {SEND_LABEL}; {ASK}"
    )


def test_the_permission_is_checked_after_the_login_and_the_method(client_of_viewer, anonymous):
    assert anonymous.get("/api/exchanges").status_code == 401
    assert client_of_viewer.get("/api/send").status_code == 405


@pytest.fixture
def client_of_viewer(viewer):
    return client_for(viewer)


# --- who caused it ----------------------------------------------------------------------------


def test_a_call_sent_through_the_console_records_the_user_as_its_actor(console, api_config):
    sent = console.post_json("/api/send", {"method": "GET", "path": "echo"}).json()

    assert Exchange.objects.get(pk=sent["id"]).actor == "engineer"
    history = console.get("/api/exchanges").json()["results"]
    assert {row["actor"] for row in history} == {"engineer"}
    assert console.get(f"/api/exchanges/{sent['id']}").json()["actor"] == "engineer"


def test_a_batch_is_a_job_made_by_the_user(console, api_config, job_worker):
    lines = ndjson(
        console.post_json("/api/batch", {"requests": [{"method": "GET", "path": "echo"}] * 3})
    )

    assert Job.objects.get(key=lines[-1]["summary"]["job"]).created_by == "engineer"


def test_a_batch_records_the_user_as_the_actor_of_its_calls(console, api_config, job_worker):
    lines = ndjson(
        console.post_json("/api/batch", {"requests": [{"method": "GET", "path": "echo"}] * 3})
    )

    batch_ids = [line["exchange_id"] for line in lines if "exchange_id" in line]
    assert len(batch_ids) == 3
    # A job's calls run in a worker; the actor goes with them.
    assert set(Exchange.objects.filter(pk__in=batch_ids).values_list("actor", flat=True)) == {
        "engineer"
    }


# --- the page ---------------------------------------------------------------------------------


def attrs_of(response, element_id: str) -> dict[str, str | None] | None:
    return next((attrs for _, attrs in tags_of(response) if attrs.get("id") == element_id), None)


CONTROLS = ("send", "batch-run", "token-refresh")


def test_without_either_permission_the_page_is_a_403_that_says_what_is_missing(outsider):
    response = client_for(outsider).get("/")

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode()))
    assert "You cannot use the console yet" in text
    assert "api_client.view_exchange (Can view exchange): read the history" in text
    assert "api_client.send_request (Can send requests to the API): send requests" in text
    assert 'add you to the "Console users" group' in text
    assert attrs_of(response, "page-config") is None  # no console, no script
    assert attrs_of(response, "missing-permissions") is not None


def test_with_only_view_the_console_is_read_only_and_says_why(viewer):
    response = client_for(viewer).get("/")

    assert response.status_code == 200
    page = response.context["page"]
    assert page["permissions"] == {"send_request": False, "view_exchange": True}
    for control in CONTROLS:
        attrs = attrs_of(response, control)
        assert "disabled" in attrs, control
        assert SEND_LABEL in attrs["title"], control
    note = attrs_of(response, "read-only-note")
    assert note is not None
    content = response.content.decode()
    assert (
        "Sending requests, batches and a refresh by hand needs the permission "
        f"{SEND_LABEL}; {ASK.replace('"', '&quot;')}"
    ) in content
    assert attrs_of(response, "history-rows") is not None
    assert attrs_of(response, "history-note") is None


def test_with_only_send_the_console_works_but_has_no_history(sender):
    response = client_for(sender).get("/")

    assert response.status_code == 200
    assert response.context["page"]["permissions"] == {
        "send_request": True,
        "view_exchange": False,
    }
    for control in CONTROLS:
        assert "disabled" not in attrs_of(response, control), control
    assert attrs_of(response, "read-only-note") is None
    assert attrs_of(response, "history-rows") is None
    content = response.content.decode()
    assert f"The history needs the permission {VIEW_LABEL}" in content


@pytest.mark.django_db  # the users come through getfixturevalue, which pytest-django can't see
@pytest.mark.parametrize("who", ["user", "superuser"])
def test_with_both_permissions_nothing_is_disabled_or_explained(request, who):
    response = client_for(request.getfixturevalue(who)).get("/")

    assert response.context["page"]["permissions"] == {
        "send_request": True,
        "view_exchange": True,
    }
    for control in CONTROLS:
        assert "disabled" not in attrs_of(response, control), control
    for note in ("read-only-note", "history-note"):
        assert attrs_of(response, note) is None


# --- in the browser ---------------------------------------------------------------------------


def refused_responses(page) -> list[str]:
    """Every 403 the page gets from now on (the page should never ask for what it may not)."""
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 403 else None)
    return refused


@pytest.mark.browser
def test_a_reader_sees_history_and_token_with_sending_disabled(page, viewer, live_server, api):
    from playwright.sync_api import expect

    sent = api.post("echo/by-the-api", json={"n": 1})
    Exchange.objects.filter(pk=sent.exchange_id).update(actor="engineer")
    log_in(page, viewer, live_server)
    refused = refused_responses(page)

    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")

    row = page.locator(f"#history-rows tr[data-id='{sent.exchange_id}']")
    expect(row).to_contain_text("/echo/by-the-api")
    expect(row.locator("td.actor")).to_have_text("engineer")
    expect(page.locator("#token-state")).to_have_attribute("data-state", "valid")
    for control in ("#send", "#batch-run", "#token-refresh"):
        expect(page.locator(control)).to_be_disabled()
    expect(page.locator("#read-only-note")).to_contain_text("api_client.send_request")
    # Sending stays off whatever the page tries: Ctrl+Enter in the builder does nothing.
    page.focus("#path")
    page.keyboard.press("Control+Enter")
    row.locator(".replay").click()
    expect(page.locator("#replay-note")).to_contain_text("Copy it as cURL")
    expect(page.locator("#token-refresh")).to_be_disabled()
    assert Exchange.objects.filter(kind=Exchange.Kind.API).count() == 1
    assert refused == []


@pytest.mark.browser
def test_a_sender_can_send_and_is_told_the_history_needs_view(
    page, sender, live_server, api_config
):
    from playwright.sync_api import expect

    log_in(page, sender, live_server)
    refused = refused_responses(page)
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")

    expect(page.locator("#history-note")).to_contain_text("api_client.view_exchange")
    page.fill("#path", "echo")
    page.click("#send")

    expect(page.locator("#response-status")).to_have_text("200")
    expect(page.locator("#token-state")).to_have_attribute("data-state", "valid")
    assert Exchange.objects.filter(kind=Exchange.Kind.API).get().actor == "sender"
    assert refused == []
    assert json.loads(page.inner_text("#page-config"))["permissions"]["view_exchange"] is False

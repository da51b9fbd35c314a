"""Who may use which connection: groups per connection, for sending and for reading.

Two connections to two APIs at once (the sandbox as ``default``, the hostile server as
``partner``). ``partner`` names a send group and a read group; the "Console users" group (both
permissions) is in neither, so its members keep ``default`` and are refused ``partner`` on every
endpoint (403 in JSON, nothing sent) and see none of its rows in the history, the job list, the
admin or an export.
"""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from api_client.models import Connection, Exchange
from jobs.models import Job
from tests.conftest import HOSTILE_ID, HOSTILE_SECRET
from tests.helpers.exchanges import create_exchange

from .conftest import api_permissions, client_for, make_user
from .helpers import ndjson


@pytest.fixture
def partner(hostile, api_config, db):
    row = Connection.objects.create(
        name="partner",
        base_url=f"{hostile.url}/api/",
        token_url=f"{hostile.url}/oauth/token",
        client_id=HOSTILE_ID,
        client_secret=HOSTILE_SECRET,
        retries=0,
        colour="#b00020",
        protected=True,
    )
    senders, readers = (
        Group.objects.create(name="partner senders"),
        Group.objects.create(name="partner readers"),
    )
    row.send_groups.add(senders)
    row.read_groups.add(readers)
    return row


@pytest.fixture
def insider(partner, fast_hasher):
    """In "Console users" and in both of partner's groups."""
    made = make_user("insider", group=True)
    made.groups.add(*Group.objects.filter(name__startswith="partner"))
    return made


@pytest.fixture
def partner_reader(partner, fast_hasher):
    """In "Console users" and partner's read group: reads partner, sends only with default."""
    made = make_user("partner-reader", group=True)
    made.groups.add(Group.objects.get(name="partner readers"))
    return made


def partner_api_calls(hostile) -> list[str]:
    return [r.path for r in hostile.received if r.path.startswith("/api/")]


def test_a_user_outside_the_connection_s_groups_is_refused_on_every_endpoint(
    partner, user, hostile
):
    console = client_for(user)
    job = Job.objects.create(name="partner's", connection="partner")
    exchange = create_exchange(connection="partner", path="/items/1")
    refused = {
        "send": console.post_json(
            "/api/send", {"connection": "partner", "method": "GET", "path": "items/1"}
        ),
        "batch": console.post_json(
            "/api/batch",
            {"connection": "partner", "requests": [{"method": "GET", "path": "items/1"}]},
        ),
        "jobs": console.post_json(
            "/api/jobs",
            {"connection": "partner", "requests": [{"method": "GET", "path": "items/1"}]},
        ),
        "forced refresh": console.post_json(
            "/_token_refresh", {"connection": "partner", "force": True}
        ),
        "refresh when due": console.post_json("/_token_refresh", {"connection": "partner"}),
        "token": console.get("/api/token?connection=partner"),
        "history": console.get("/api/exchanges?connection=partner"),
        "exchange": console.get(f"/api/exchanges/{exchange.pk}"),
        "job list": console.get("/api/jobs?connection=partner"),
        "job": console.get(f"/api/jobs/{job.key}"),
        "job results": console.get(f"/api/jobs/{job.key}/results"),
        "job action": console.post_json(f"/api/jobs/{job.key}/pause", {}),
    }

    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 403)
    for name, response in refused.items():
        error = response.json()["error"]
        assert error["code"] == "forbidden", name
        assert "'partner'" in error["message"], name
    assert partner_api_calls(hostile) == [] and hostile.grants == 0
    assert Job.objects.count() == 1  # no job was made


def test_an_unknown_connection_is_a_400_naming_it(user):
    console = client_for(user)

    response = console.post_json(
        "/api/send", {"connection": "nowhere", "method": "GET", "path": "echo"}
    )
    bad_name = console.post_json("/api/send", {"connection": "No Such!", "path": "echo"})

    assert response.status_code == 400
    assert response.json()["errors"]["connection"] == ["There is no connection named 'nowhere'."]
    assert bad_name.status_code == 400 and "connection" in bad_name.json()["errors"]


def test_a_member_of_its_groups_sends_batches_and_reads_with_it(insider, hostile, job_worker):
    console = client_for(insider)

    sent = console.post_json(
        "/api/send", {"connection": "partner", "method": "GET", "path": "items/1"}
    )
    batch = console.post(
        "/api/batch?connection=partner",
        b'{"method": "GET", "path": "items/2"}\n{"method": "GET", "path": "items/3"}\n',
        content_type="application/x-ndjson",
        headers={"X-CSRFToken": console.csrf_token()},
    )
    lines = ndjson(batch)
    token = console.get("/api/token?connection=partner")
    history = console.get("/api/exchanges?connection=partner").json()["results"]

    assert sent.status_code == 200, sent.content
    assert batch.status_code == 200 and lines[-1]["summary"]["counts"]["answered"] == 2, lines
    assert sorted(partner_api_calls(hostile)) == ["/api/items/1", "/api/items/2", "/api/items/3"]
    assert Job.objects.get().connection == "partner"
    assert token.status_code == 200 and token.json()["state"] == "valid"
    assert {row["connection"] for row in history} == {"partner"}
    assert len(history) == 3


def test_the_history_and_the_job_list_show_only_connections_the_user_may_read(
    partner, user, partner_reader
):
    create_exchange(connection="default", path="/mine")
    theirs = create_exchange(connection="partner", path="/theirs")
    Job.objects.create(name="default's")
    Job.objects.create(name="partner's", connection="partner")

    def seen(who) -> tuple[set[str], set[str]]:
        console = client_for(who)
        paths = {row["path"] for row in console.get("/api/exchanges").json()["results"]}
        jobs = {row["name"] for row in console.get("/api/jobs").json()["results"]}
        return paths, jobs

    assert seen(user) == ({"/mine"}, {"default's"})
    assert seen(partner_reader) == ({"/mine", "/theirs"}, {"default's", "partner's"})
    reader = client_for(partner_reader)
    assert reader.get(f"/api/exchanges/{theirs.pk}").status_code == 200
    # Reading is not sending.
    refused = reader.post_json("/api/send", {"connection": "partner", "path": "items/1"})
    assert refused.status_code == 403


def test_the_console_offers_only_connections_the_user_may_use(partner, user, insider):
    def offered(who) -> list[dict]:
        response = client_for(who).get("/")
        assert response.status_code == 200
        return response.context["page"]["connections"]

    assert [c["name"] for c in offered(user)] == ["default"]
    [default, theirs] = offered(insider)
    assert default["name"] == "default" and default["can_send"]
    assert theirs == {
        "name": "partner",
        "base_url": partner.base_url,
        "max_workers": 16,
        "batch_max": 1000,
        "colour": "#b00020",
        "protected": True,
        "can_send": True,
        "can_read": True,
    }


def test_the_admin_lists_finds_and_exports_only_readable_connections(partner, user, insider):
    mine = create_exchange(connection="default", path="/mine")
    theirs = create_exchange(connection="partner", path="/theirs")
    admin = Client()
    admin.force_login(user)

    listed = admin.get("/admin/api_client/exchange/")
    detail = admin.get(f"/admin/api_client/exchange/{theirs.pk}/change/", follow=True)
    export = admin.post(
        "/admin/api_client/exchange/",
        {"action": "export_jsonl", "_selected_action": [mine.pk, theirs.pk]},
    )
    body = b"".join(export.streaming_content).decode()

    assert listed.status_code == 200
    assert "/mine" in listed.content.decode() and "/theirs" not in listed.content.decode()
    assert b"/theirs" not in detail.content
    assert "/mine" in body and "/theirs" not in body
    everything = client_for(insider).get("/admin/api_client/exchange/?connection=partner")
    assert "/theirs" in everything.content.decode()
    assert "/mine" not in everything.content.decode()


def test_the_default_connection_can_be_restricted_to_groups_too(partner, user, insider):
    default = Connection.objects.get(name="default")
    default.send_groups.add(Group.objects.get(name="partner senders"))

    refused = client_for(user).post_json("/api/send", {"method": "GET", "path": "echo"})
    allowed = client_for(insider).post_json("/api/send", {"method": "GET", "path": "echo"})

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert Exchange.objects.filter(kind="api").count() == 1


def test_the_admin_s_job_item_and_token_pages_leave_out_unreadable_connections(partner, user):
    from api_client.models import Token
    from jobs.models import Item

    mine = Job.objects.create(name="default job")
    theirs = Job.objects.create(name="partner job", connection="partner")
    Item.objects.create(job=mine, index=0, method="GET", path="/mine-item")
    Item.objects.create(job=theirs, index=0, method="GET", path="/theirs-item")
    Token.objects.create(credential_key="a", connection="default", client_id="mine-client")
    Token.objects.create(credential_key="b", connection="partner", client_id="theirs-client")
    admin = Client()
    admin.force_login(user)
    user.user_permissions.add(*api_permissions("view_token"))

    jobs = admin.get("/admin/jobs/job/").content.decode()
    items = admin.get("/admin/jobs/item/").content.decode()
    token_list = admin.get("/admin/api_client/token/").content.decode()
    their_job = admin.get(f"/admin/jobs/job/{theirs.pk}/change/", follow=True)

    assert "default job" in jobs and "partner job" not in jobs
    assert "/mine-item" in items and "/theirs-item" not in items
    assert "mine-client" in token_list and "theirs-client" not in token_list
    assert b"partner job" not in their_job.content


def test_switching_a_connection_off_pauses_its_running_job(partner, insider, hostile, job_worker):
    import time

    from jobs.models import Item

    console = client_for(insider)
    calls = [{"method": "GET", "path": "slow", "query": {"delay": "0.2"}} for _ in range(40)]
    made = console.post_json(
        "/api/jobs", {"connection": "partner", "concurrency": 2, "requests": calls}
    )
    assert made.status_code == 201, made.content
    job = Job.objects.get()
    for _ in range(200):  # until some are answered (bounded: 20 s)
        if job.items.filter(state=Item.State.ANSWERED).exists():
            break
        time.sleep(0.1)
    partner.enabled = False
    partner.save()

    for _ in range(300):  # until the worker has seen it (it reads the row every 5 s)
        job.refresh_from_db()
        if job.state == Job.State.PAUSED and not job.items.filter(state="leased").exists():
            break
        time.sleep(0.1)

    assert job.state == Job.State.PAUSED
    assert "'partner' is switched off" in job.error
    left = job.items.filter(state=Item.State.PLANNED).count()
    assert 0 < left < 40
    sent = len(partner_api_calls(hostile))
    assert sent == 40 - left  # the rest were never sent
    refused = console.post_json(f"/api/jobs/{job.key}/resume", {})
    assert refused.status_code == 409 and "switched off" in refused.json()["error"]["message"]


def test_a_user_with_no_connection_open_to_them_gets_a_page_saying_so(partner, user):
    default = Connection.objects.get(name="default")
    default.send_groups.add(Group.objects.get(name="partner senders"))

    page = client_for(user).get("/")

    assert page.status_code == 403
    assert b'id="no-connection"' in page.content
    assert b"sandbox" not in page.content  # nothing of default's: no base URL, no token


def test_a_long_job_on_one_connection_never_holds_back_a_job_on_another(
    partner, insider, hostile, job_worker
):
    import time

    console = client_for(insider)
    slow = [{"method": "GET", "path": "slow", "query": {"delay": "0.2"}} for _ in range(40)]
    long = console.post_json(
        "/api/jobs", {"connection": "partner", "concurrency": 1, "requests": slow}
    ).json()
    short = console.post_json(
        "/api/jobs", {"requests": [{"method": "GET", "path": "echo"}] * 3}
    ).json()

    for _ in range(300):  # bounded: 30 s
        if Job.objects.get(key=short["key"]).state == Job.State.FINISHED:
            break
        time.sleep(0.1)

    assert Job.objects.get(key=short["key"]).state == Job.State.FINISHED
    assert Job.objects.get(key=long["key"]).state == Job.State.RUNNING  # still going, beside it
    Job.objects.filter(key=long["key"]).update(state=Job.State.CANCELLED)

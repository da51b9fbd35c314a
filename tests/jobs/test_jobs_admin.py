"""The jobs admin: a read-only list and page per job with its progress, the items of a job
(paginated, filtered, linked to their exchanges), actions that take the send permission, and
the warning when jobs wait for a worker that is not there."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from api_client.client import ApiClient
from api_client.conf import api_settings
from jobs.models import Item, Job, WorkerBeat
from jobs.planning import plan
from tests.helpers.exchanges import create_exchange

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:jobs_job_changelist")
ITEMS = reverse("admin:jobs_item_changelist")


def staff_client(username: str, *codenames: str) -> Client:
    """A logged-in staff user with exactly these api_client permissions."""
    made = get_user_model().objects.create_user(username, is_staff=True)
    made.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="api_client", codename__in=codenames)
    )
    client = Client()
    client.force_login(made)
    return client


@pytest.fixture
def reader() -> Client:
    return staff_client("reader", "view_exchange")


@pytest.fixture
def operator() -> Client:
    return staff_client("operator", "view_exchange", "send_request")


@pytest.fixture
def outsider() -> Client:
    return staff_client("outsider")


def make_job(count: int = 5, name: str = "calls", **fields) -> Job:
    """A planned job of ``count`` GETs (planned through the client's checks; nothing sent)."""
    client = ApiClient(api_settings())
    try:
        calls = [{"path": f"items/{n}"} for n in range(count)]
        job = plan(client, list(enumerate(calls, 1)), name=name, concurrency=2)
    finally:
        client.close()
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
        job.refresh_from_db()
    return job


def settle(job: Job, index: int, state: str, status: int | None = None, **fields) -> None:
    """What a worker would have written back for one item."""
    Item.objects.filter(job=job, index=index).update(
        state=state, status=status, finished_at=timezone.now(), **fields
    )


def a_mixed_job(name: str = "mixed") -> Job:
    """5 items: 200, 404, failed, planned, planned."""
    job = make_job(5, name=name)
    settle(job, 0, Item.State.ANSWERED, 200, duration_ms=12.0)
    settle(job, 1, Item.State.ANSWERED, 404, duration_ms=8.0)
    settle(job, 2, Item.State.FAILED, error_code="timeout", error="No answer in time.")
    return job


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def run_action(client: Client, action: str, jobs: list[Job]) -> list[tuple[str, str]]:
    """The messages of the page the action leads to (the list, where they are shown)."""
    response = client.post(
        JOBS, {"action": action, "_selected_action": [j.pk for j in jobs], "index": 0}, follow=True
    )
    assert response.status_code == 200
    return messages_of(response)


def offered_actions(client: Client, url: str) -> set[str]:
    content = client.get(url).content.decode()
    return set(re.findall(r'<option value="(\w+)"', content)) - {""}


def beat() -> None:
    WorkerBeat.objects.create(worker_id="w1", host="h", pid=1)


# --- the list --------------------------------------------------------------------------------


def test_the_list_shows_each_jobs_progress_and_failing_calls(admin_client):
    job = a_mixed_job("nightly sync")

    content = admin_client.get(JOBS).content.decode()

    assert job.key[:8] in content and "nightly sync" in content
    assert '<progress max="5" value="3"' in content and "3/5 (60%)" in content
    assert '<strong style="color: #ba2121">2</strong>' in content  # the 404 and the failure
    assert "running" in content


def test_the_list_costs_the_same_queries_for_few_jobs_and_many(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(JOBS).status_code == 200
        return len(captured)

    a_mixed_job()
    a_mixed_job()
    few = queries()
    for _ in range(6):
        a_mixed_job()

    assert queries() == few


def test_the_list_filters_by_state_and_origin_and_searches_key_and_name(admin_client):
    paused = make_job(1, name="alpha run", state=Job.State.PAUSED)
    command = make_job(1, name="beta run", origin=Job.Origin.COMMAND)

    def shown(query: str) -> set[str]:
        content = admin_client.get(f"{JOBS}?{query}").content.decode()
        return {job.key for job in (paused, command) if job.key[:8] in content}

    assert shown("state__exact=paused") == {paused.key}
    assert shown("origin__exact=command") == {command.key}
    assert shown(f"q={command.key[:6]}") == {command.key}
    assert shown("q=alpha") == {paused.key}


def test_the_list_warns_when_jobs_run_and_no_worker_is_seen(admin_client):
    make_job(1, state=Job.State.FINISHED)

    quiet = messages_of(admin_client.get(JOBS))
    make_job(1)
    warned = messages_of(admin_client.get(JOBS))
    beat()
    with_worker = messages_of(admin_client.get(JOBS))

    assert quiet == [] and with_worker == []
    assert [level for level, _ in warned] == ["warning"]
    assert warned[0][1].startswith("No worker has been seen for ")
    assert "`manage.py db_worker`" in warned[0][1]


# --- a job's page ----------------------------------------------------------------------------


def test_a_jobs_page_shows_its_progress_and_links_to_its_items(admin_client):
    job = a_mixed_job()

    content = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    assert job.key in content
    assert "3 of 5 calls done, 2 failing" in content
    assert f'href="{ITEMS}?job={job.pk}"' in content and "All 5 items" in content
    assert f"{ITEMS}?job={job.pk}&amp;state__exact=failed" in content
    assert ">2 planned</a>" in content and ">1 failed</a>" in content
    assert ">404 x 1</a>" in content
    assert "No worker has been seen" in content  # it waits: describe() says why
    assert 'name="_save"' not in content  # read-only


def test_jobs_and_items_cannot_be_added_changed_or_deleted_in_the_admin(admin_client):
    job = make_job(1)
    item = job.items.get()

    for url in (
        reverse("admin:jobs_job_add"),
        reverse("admin:jobs_job_delete", args=[job.pk]),
        reverse("admin:jobs_item_add"),
        reverse("admin:jobs_item_delete", args=[item.pk]),
    ):
        assert admin_client.get(url).status_code == 403, url
    changed = admin_client.post(reverse("admin:jobs_job_change", args=[job.pk]), {"name": "x"})
    assert changed.status_code == 403
    assert Job.objects.get(pk=job.pk).name == "calls"
    assert "delete_selected" not in offered_actions(admin_client, JOBS)
    assert "delete_selected" not in offered_actions(admin_client, ITEMS)


def test_a_job_of_100000_items_is_shown_a_page_of_items_at_a_time(admin_client):
    job = Job.objects.create(name="big", state=Job.State.RUNNING, total=100_000)
    Item.objects.bulk_create(
        (Item(job=job, index=n, method="GET", path=f"/items/{n}") for n in range(100_000)),
        batch_size=5000,
    )

    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    with CaptureQueriesContext(connection) as captured:
        items = admin_client.get(f"{ITEMS}?job={job.pk}")

    assert page.status_code == 200 and items.status_code == 200
    assert "/items/" not in page.content.decode()  # no item rendered on the job's page
    assert "All 100000 items" in page.content.decode()
    assert len(re.findall(r">/items/\d+<", items.content.decode())) == 100
    assert "100000 items" in items.content.decode()
    assert len(captured) < 15


# --- items -----------------------------------------------------------------------------------


def test_items_are_filtered_by_job_state_and_status_class_and_link_to_their_exchange(
    admin_client,
):
    job, other = a_mixed_job(), make_job(2)
    exchange = create_exchange(status=404, path="/items/1")
    Item.objects.filter(job=job, index=1).update(exchange_id=exchange.pk)

    def shown(query: str) -> list[str]:
        content = admin_client.get(f"{ITEMS}?{query}").content.decode()
        return re.findall(r"/items/\d+", content)

    assert len(shown(f"job={job.pk}")) == 5 and len(shown(f"job={other.pk}")) == 2
    assert shown(f"job={job.pk}&state__exact=failed") == ["/items/2"]
    assert shown(f"job={job.pk}&status_class=4") == ["/items/1"]
    assert shown(f"job={job.pk}&status_class=none") == ["/items/2", "/items/3", "/items/4"]
    content = admin_client.get(f"{ITEMS}?job={job.pk}&status_class=4").content.decode()
    assert reverse("admin:api_client_exchange_change", args=[exchange.pk]) in content
    assert reverse("admin:jobs_job_change", args=[job.pk]) in content


def test_an_items_page_shows_its_call_with_secrets_redacted(admin_client):
    client = ApiClient(api_settings())
    try:
        request = {"method": "POST", "path": "login", "headers": {"X-Secret-Token": "hunter22"},
                   "json": {"user": "ada", "password": "hunter22"}}  # fmt: skip
        job = plan(client, [(1, request)])
    finally:
        client.close()

    content = admin_client.get(
        reverse("admin:jobs_item_change", args=[job.items.get().pk])
    ).content.decode()

    assert "hunter22" not in content
    assert "[redacted]" in content and "ada" in content


# --- actions ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pause_resume_and_cancel_from_the_list(operator):
    job = make_job(3)

    paused = run_action(operator, "pause_selected", [job])
    state_after_pause = Job.objects.get(pk=job.pk).state
    resumed = run_action(operator, "resume_selected", [job])
    state_after_resume = Job.objects.get(pk=job.pk).state
    cancelled = run_action(operator, "cancel_selected", [job])
    refused = run_action(operator, "cancel_selected", [job])

    assert paused == [("success", f"Paused 1 job: {job.key[:8]}.")]
    assert state_after_pause == Job.State.PAUSED
    assert resumed[0] == ("success", f"Resumed 1 job: {job.key[:8]}.")
    assert resumed[1][0] == "warning" and "No worker has been seen" in resumed[1][1]
    assert state_after_resume == Job.State.RUNNING
    assert DBTaskResult.objects.filter(task_path="jobs.tasks.run_job").count() >= 1
    assert cancelled == [("success", f"Cancelled 1 job: {job.key[:8]}.")]
    assert Job.objects.get(pk=job.pk).counts()["cancelled"] == 3
    assert refused == [("warning", f"Job {job.key} is cancelled; there is nothing to cancel.")]


@pytest.mark.django_db(transaction=True)
def test_resend_failed_and_unknown_items_from_the_list(operator):
    job = a_mixed_job()
    settle(job, 3, Item.State.UNKNOWN, error_code="unknown")
    settle(job, 4, Item.State.FAILED)
    Job.objects.filter(pk=job.pk).update(state=Job.State.FINISHED)
    quiet = make_job(1, state=Job.State.FINISHED)
    beat()

    failed = run_action(operator, "resend_failed", [job, quiet])
    unknown = run_action(operator, "resend_unknown", [job])

    assert ("success", "Planned 2 failed items again.") in failed
    assert ("info", f"No failed items in {quiet.key[:8]}: nothing to send.") in failed
    assert unknown == [("success", "Planned 1 unknown item again.")]
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.counts()["planned"] == 3


def test_the_actions_are_offered_only_to_users_who_may_send(reader, operator):
    make_job(1)
    actions = {"pause_selected", "resume_selected", "cancel_selected", "resend_failed",
               "resend_unknown"}  # fmt: skip

    assert offered_actions(operator, JOBS) == actions
    assert offered_actions(reader, JOBS) == set()


def test_an_action_posted_by_a_user_who_may_not_send_does_nothing(reader):
    job = make_job(1)

    beat()  # no warning on the page
    assert run_action(reader, "cancel_selected", [job]) == []
    assert Job.objects.get(pk=job.pk).state == Job.State.RUNNING


def test_viewing_jobs_takes_the_view_permission(reader, outsider):
    job = make_job(1)

    assert reader.get(JOBS).status_code == 200
    assert reader.get(reverse("admin:jobs_job_change", args=[job.pk])).status_code == 200
    assert reader.get(f"{ITEMS}?job={job.pk}").status_code == 200
    assert outsider.get(JOBS).status_code == 403
    assert outsider.get(f"{ITEMS}?job={job.pk}").status_code == 403
    assert outsider.get(reverse("admin:jobs_job_change", args=[job.pk])).status_code == 403
    assert reverse("admin:jobs_job_changelist") not in outsider.get("/admin/").content.decode()

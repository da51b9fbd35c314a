"""``add_connection``, and ``--connection`` on the commands that send, read or delete."""

import json

import pytest
from django.contrib.auth.models import Group

from api_client import encryption
from api_client.models import Connection, Exchange
from jobs.models import Job
from tests.conftest import HOSTILE_ID, HOSTILE_SECRET
from tests.helpers.exchanges import ago, create_exchange, run_command


@pytest.fixture
def run(capsys, monkeypatch):
    def run(name: str, *argv: str):
        return run_command(name, *argv, capsys=capsys, monkeypatch=monkeypatch)

    return run


@pytest.fixture
def partner(hostile, api_config, run, monkeypatch):
    monkeypatch.setenv("PARTNER_SECRET", HOSTILE_SECRET)
    done = run(
        "add_connection", "partner",
        "--base-url", f"{hostile.url}/api/",
        "--token-url", f"{hostile.url}/oauth/token",
        "--client-id", HOSTILE_ID,
        "--client-secret-env", "PARTNER_SECRET",
        "--retries", "0",
        "--rate-limit", "20/s",
        "--colour", "#b00020",
        "--protected",
    )  # fmt: skip
    assert done.status == 0, done.err
    return Connection.objects.get(name="partner")


def test_add_connection_stores_every_setting_and_the_secret_encrypted(partner, hostile):
    assert (partner.base_url, partner.client_id, partner.rate_limit) == (
        f"{hostile.url}/api/",
        HOSTILE_ID,
        "20/s",
    )
    assert partner.retries == 0 and partner.protected and partner.colour == "#b00020"
    assert partner.client_secret == HOSTILE_SECRET
    stored = Connection.objects.filter(pk=partner.pk).values_list(
        encryption.stored("client_secret"), flat=True
    )
    assert HOSTILE_SECRET not in stored.get()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["partner", "--base-url", "http://127.0.0.1:9/"], "exists; give --update"),
        (["staging", "--update", "--colour", "#000000"], "no connection named 'staging'"),
        (["staging", "--base-url", "http://127.0.0.1:9/"], "Give --client-secret-env VAR"),
        (["partner", "--update", "--colour", "red"], "--colour: A colour is #rrggbb"),
        (["partner", "--update", "--rate-limit", "5/fortnight"], "rate limit:"),
        (["partner", "--update", "--client-secret-env", "UNSET_VAR_X"], "UNSET_VAR_X is not set"),
        (["partner", "--update", "--send-group", "nobody"], "No group is named 'nobody'"),
        (["default", "--update", "--base-url", "http://x/"], "--base-url cannot be set here"),
        (["Bad Name", "--base-url", "http://x/"], "a connection name has"),
    ],
)
def test_add_connection_refuses_bad_input_and_saves_nothing(partner, run, argv, says):
    before = list(Connection.objects.order_by("pk").values())

    done = run("add_connection", *argv)

    assert done.status == 2
    assert says in done.err, done.err
    assert list(Connection.objects.order_by("pk").values()) == before


def test_add_connection_sets_groups_and_default_s_colour(partner, run):
    Group.objects.create(name="partner senders")

    assert (
        run("add_connection", "partner", "--update", "--send-group", "partner senders").status == 0
    )
    assert run("add_connection", "default", "--update", "--colour", "#1b7f3b").status == 0

    assert list(partner.send_groups.values_list("name", flat=True)) == ["partner senders"]
    assert Connection.objects.get(name="default").colour == "#1b7f3b"


def test_api_request_sends_with_the_connection_it_is_given(partner, hostile, run):
    done = run("api_request", "GET", "items/7", "--connection", "partner")

    assert done.status == 0, done.err
    assert [r.path for r in hostile.received if r.path.startswith("/api/")] == ["/api/items/7"]
    assert Exchange.objects.get(kind="api").connection == "partner"


def test_an_unknown_connection_is_bad_input_and_sends_nothing(api_config, run):
    done = run("api_request", "GET", "echo", "--connection", "nowhere")

    assert done.status == 2
    assert "There is no connection named 'nowhere'" in done.err
    assert not Exchange.objects.exists()


def test_send_batch_makes_a_job_of_the_connection_and_job_commands_check_it(partner, run, tmp_path):
    lines = tmp_path / "calls.jsonl"
    lines.write_text('{"method": "GET", "path": "items/1"}\n')

    done = run("send_batch", str(lines), "--connection", "partner", "--detach")

    assert done.status == 0, done.err
    job = Job.objects.get()
    assert job.connection == "partner" and done.out.splitlines()[-1] == job.key
    shown = run("show_job", job.key, "--json")
    assert json.loads(shown.out)["connection"] == "partner"
    wrong = run("pause_job", job.key, "--connection", "default")
    assert wrong.status == 2 and "belongs to the connection 'partner'" in wrong.err
    job.refresh_from_db()
    assert job.state != Job.State.PAUSED


def test_purge_exchanges_with_a_connection_deletes_only_its_rows(partner, run):
    create_exchange(connection="default", created_at=ago(days=40))
    create_exchange(connection="partner", created_at=ago(days=40))

    done = run("purge_exchanges", "--older-than", "30", "--connection", "partner")

    assert done.status == 0, done.err
    assert list(Exchange.objects.values_list("connection", flat=True)) == ["default"]


def test_an_update_never_overwrites_a_secret_no_key_decrypts(partner, run, settings):
    from api_client import connections

    stored = Connection.objects.filter(pk=partner.pk).values_list(
        encryption.stored("client_secret"), flat=True
    )
    before = stored.get()
    settings.POC_ENCRYPTION_KEYS = ["pYVBe3b4QRVKxkzqo-IvQQWNWfZRGiNSC07iAFHDmvY="]
    connections.forget()

    done = run("add_connection", "partner", "--update", "--colour", "#123456")

    assert done.status == 2 and "cannot be decrypted" in done.err
    assert stored.get() == before

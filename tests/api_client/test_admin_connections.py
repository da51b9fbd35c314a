"""The connections in the admin: default read only from the environment, a write-only secret,
the same checks as ``add_connection``, and per-connection rights on the other pages."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from api_client import encryption
from api_client.models import Connection, Exchange
from tests.conftest import HOSTILE_ID, HOSTILE_SECRET
from tests.helpers.exchanges import create_exchange

ADD = "/admin/api_client/connection/add/"


def form(**changes) -> dict:
    return {
        "name": "partner",
        "enabled": "on",
        "colour": "#b00020",
        "base_url": "http://127.0.0.1:9/api/",
        "token_url": "http://127.0.0.1:9/oauth/token",
        "client_id": HOSTILE_ID,
        "client_secret": HOSTILE_SECRET,
        "client_auth": "basic",
        "scope": "",
        "rate_limit": "",
        **changes,
    }


@pytest.fixture
def default_row(db) -> Connection:
    return Connection.objects.get_or_create(name="default")[0]


def test_default_shows_the_environment_read_only_and_never_its_secret(
    admin_client, default_row, api_config
):
    page = admin_client.get(f"/admin/api_client/connection/{default_row.pk}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert api_config.BASE_URL in html
    assert "POC_API_CLIENT_SECRET" in html and "(set, not shown)" in html
    assert api_config.CLIENT_SECRET not in html
    assert 'name="base_url"' not in html  # not a field that can be edited
    assert 'name="colour"' in html


def test_a_connection_is_added_with_its_secret_encrypted_and_never_shown_again(admin_client):
    added = admin_client.post(ADD, form())

    assert added.status_code == 302, added.content.decode()[:2000]
    row = Connection.objects.get(name="partner")
    assert row.client_secret == HOSTILE_SECRET
    stored = Connection.objects.filter(pk=row.pk).values_list(
        encryption.stored("client_secret"), flat=True
    )
    assert HOSTILE_SECRET not in stored.get()
    page = admin_client.get(f"/admin/api_client/connection/{row.pk}/change/")
    assert HOSTILE_SECRET not in page.content.decode()


def test_an_edit_that_leaves_the_secret_empty_keeps_it(admin_client):
    admin_client.post(ADD, form())
    row = Connection.objects.get(name="partner")

    changed = admin_client.post(
        f"/admin/api_client/connection/{row.pk}/change/",
        form(client_secret="", colour="#123456"),
    )

    assert changed.status_code == 302
    row.refresh_from_db()
    assert row.colour == "#123456" and row.client_secret == HOSTILE_SECRET


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"base_url": "ftp://example.com/"}, "Base URL must be an absolute http(s) URL"),
        ({"base_url": "not a url"}, "Enter a valid URL"),
        ({"rate_limit": "5/fortnight"}, "Rate limit:"),
        ({"client_id": ""}, "Client id is empty"),
        ({"colour": "red"}, "A colour is #rrggbb"),
        ({"name": "Not A Name"}, "A connection name has"),
    ],
)
def test_the_form_refuses_an_unusable_connection_and_saves_nothing(admin_client, changes, says):
    refused = admin_client.post(ADD, form(**changes))

    assert refused.status_code == 200
    assert says in refused.content.decode()
    assert not Connection.objects.filter(name="partner").exists()


def test_connections_are_switched_off_not_deleted(admin_client, default_row):
    page = admin_client.get(f"/admin/api_client/connection/{default_row.pk}/delete/")
    assert page.status_code in (302, 403)
    assert Connection.objects.filter(name="default").exists()


def test_the_summary_is_only_for_those_who_may_read_every_connection(db):
    from django.contrib.auth import get_user_model

    Connection.objects.create(
        name="partner",
        base_url="http://127.0.0.1:9/",
        token_url="http://127.0.0.1:9/t",
        client_id="c",
        client_secret="s",
    ).read_groups.add(Group.objects.create(name="partner readers"))
    user = get_user_model().objects.create_user("reader", is_staff=True)
    user.groups.add(Group.objects.get(name="Console users"))
    browser = Client()
    browser.force_login(user)

    assert browser.get("/admin/api_client/exchangesummary/").status_code == 403
    user.groups.add(Group.objects.get(name="partner readers"))
    browser.force_login(user)
    assert browser.get("/admin/api_client/exchangesummary/").status_code == 200
    create_exchange(connection="partner")
    assert Exchange.objects.count() == 1


def test_a_user_who_may_only_view_connections_never_sees_a_secret(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    row = Connection.objects.create(
        name="partner",
        base_url="http://127.0.0.1:9/",
        token_url="http://127.0.0.1:9/t",
        client_id="c",
        client_secret="S3cr3t-partner-value-XYZ",
    )
    viewer = get_user_model().objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_connection"))
    browser = Client()
    browser.force_login(viewer)

    page = browser.get(f"/admin/api_client/connection/{row.pk}/change/")

    assert page.status_code == 200
    assert "S3cr3t-partner-value-XYZ" not in page.content.decode()
    assert "(set, not shown)" in page.content.decode()


def test_error_pages_scrub_every_connection_s_secret_once_used(db):
    from api_client import connections, reporting

    Connection.objects.create(
        name="partner",
        base_url="http://127.0.0.1:9/",
        token_url="http://127.0.0.1:9/t",
        client_id="c",
        client_secret="partner-only-secret-9876",
    )
    connections.settings_for("partner")

    assert "partner-only-secret-9876" in reporting.held_secrets()

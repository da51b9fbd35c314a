"""The admin's share of "who may do what" and "who did it": the actions that call the API take
``api_client.send_request``, and every exchange shows (and is filtered by) who caused it."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api_client.models import Exchange, Token
from sandbox import stats
from tests.helpers.exchanges import ago, create_exchange

EXCHANGES = reverse("admin:api_client_exchange_changelist")
TOKENS = reverse("admin:api_client_token_changelist")


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
def reader(db) -> Client:
    """May view exchanges and tokens, not send."""
    return staff_client("reader", "view_exchange", "view_token")


@pytest.fixture
def operator(db) -> Client:
    """May view exchanges and tokens, and send."""
    return staff_client("operator", "view_exchange", "view_token", "send_request")


def run_action(client: Client, url: str, action: str, rows) -> list[tuple[str, str]]:
    response = client.post(
        url, {"action": action, "_selected_action": [r.pk for r in rows], "index": 0}
    )
    assert response.status_code in (200, 302)
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def offered_actions(client: Client, url: str) -> set[str]:
    content = client.get(url).content.decode()
    return set(re.findall(r'<option value="(\w+)"', content)) - {""}


# --- the actions that send ---------------------------------------------------------------------


@pytest.mark.django_db
def test_replay_is_offered_only_to_users_who_may_send(reader, operator):
    assert offered_actions(reader, EXCHANGES) == {"export_jsonl", "export_csv"}
    assert offered_actions(operator, EXCHANGES) == {"replay_selected", "export_jsonl", "export_csv"}


def test_replay_by_a_user_who_may_not_send_sends_nothing(reader, api):
    original = Exchange.objects.get(pk=api.get("echo").exchange_id)
    calls_before = stats.request_counts()["total"]

    messages = run_action(reader, EXCHANGES, "replay_selected", [original])

    assert messages == [("warning", "No action selected.")]
    assert Exchange.objects.filter(kind=Exchange.Kind.API).count() == 1
    assert stats.request_counts()["total"] == calls_before


def test_replay_records_the_admin_user_who_ran_it_as_the_actor(admin_client, api):
    original = Exchange.objects.get(pk=api.get("echo").exchange_id)
    assert original.actor == ""  # sent by Python code in the test

    [(level, _)] = run_action(admin_client, EXCHANGES, "replay_selected", [original])

    assert level == "success"
    replayed = Exchange.objects.filter(kind=Exchange.Kind.API).exclude(pk=original.pk).get()
    assert replayed.actor == "admin"


def test_an_operator_may_replay(operator, api):
    original = Exchange.objects.get(pk=api.get("echo").exchange_id)

    [(level, _)] = run_action(operator, EXCHANGES, "replay_selected", [original])

    assert level == "success"
    assert Exchange.objects.filter(kind=Exchange.Kind.API, actor="operator").count() == 1


@pytest.mark.django_db
def test_refresh_now_is_offered_only_to_users_who_may_send(reader, operator):
    Token.objects.create(credential_key="k", token_url="http://t.example/token", client_id="c")

    assert offered_actions(reader, TOKENS) == set()
    assert offered_actions(operator, TOKENS) == {"refresh_now"}


def test_refresh_now_by_a_user_who_may_not_send_obtains_no_token(reader, api):
    api.get("whoami")
    before = Token.objects.get()

    messages = run_action(reader, TOKENS, "refresh_now", [before])

    assert messages == []  # with no action to offer, the list takes none
    assert Token.objects.get().access_token == before.access_token
    assert stats.grant_count() == 1


def test_refresh_now_by_an_operator_is_recorded_under_their_name(operator, api):
    api.get("whoami")

    [(level, _)] = run_action(operator, TOKENS, "refresh_now", [Token.objects.get()])

    assert level == "success"
    assert Exchange.objects.filter(kind=Exchange.Kind.TOKEN).latest("id").actor == "operator"


# --- who did it --------------------------------------------------------------------------------


@pytest.fixture
def by_three():
    return {
        "engineer": create_exchange(path="/by-engineer", actor="engineer"),
        "command": create_exchange(path="/by-command", actor="command purge_exchanges"),
        "nobody": create_exchange(path="/by-code", actor=""),
        "older": create_exchange(
            path="/by-engineer-before", actor="engineer", created_at=ago(hours=1)
        ),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=engineer", ["/by-engineer", "/by-engineer-before"]),
        ("actor=command+purge_exchanges", ["/by-command"]),
        ("actor=+engineer+", ["/by-engineer", "/by-engineer-before"]),
        ("actor=engine", []),  # exact, not a part
        ("actor=", ["/by-code", "/by-command", "/by-engineer", "/by-engineer-before"]),
    ],
)
def test_the_list_filters_by_exact_actor(admin_client, by_three, query, expected):
    response = admin_client.get(f"{EXCHANGES}?{query}")

    assert [row.path for row in response.context["cl"].result_list] == expected


@pytest.mark.django_db
def test_the_list_shows_each_actor_as_a_link_to_their_exchanges(admin_client, by_three):
    content = admin_client.get(EXCHANGES).content.decode()

    assert f'<a href="{EXCHANGES}?actor=engineer" title="Every exchange caused by engineer">' in (
        content
    )
    assert f'href="{EXCHANGES}?actor=command+purge_exchanges"' in content
    assert 'name="actor"' in content and 'maxlength="150"' in content  # the filter's box


@pytest.mark.django_db
def test_the_detail_shows_the_actor_under_caused_by(admin_client, by_three):
    exchange = by_three["engineer"]

    content = admin_client.get(
        reverse("admin:api_client_exchange_change", args=[exchange.pk])
    ).content.decode()

    caused_by = content[content.index("Caused by") :]
    assert caused_by.index(">engineer</a>") < caused_by.index("Request")


@pytest.mark.django_db
def test_filtering_by_actor_reads_the_actor_index():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # on a tiny table it would rather scan it all
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = Exchange.objects.filter(actor="engineer").order_by("-created_at").explain()

    assert "exchange_actor_idx" in plan


@pytest.mark.django_db
def test_exports_carry_the_actor(admin_client, by_three):
    response = admin_client.post(
        EXCHANGES,
        {"action": "export_csv", "_selected_action": [by_three["engineer"].pk], "index": 0},
    )

    header, row = b"".join(response.streaming_content).decode().splitlines()
    assert "actor" in header.split(",")
    assert ",engineer," in row


# --- the time of each exchange, to the second ----------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_seconds_and_sorts_by_time(admin_client):
    first = create_exchange(path="/first", created_at=ago(seconds=30))
    second = create_exchange(path="/second", created_at=ago(seconds=5))

    response = admin_client.get(f"{EXCHANGES}?o=1")  # column 1, ascending

    stamps = [
        timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S") for e in (first, second)
    ]
    content = response.content.decode()
    assert stamps[0] in content and stamps[1] in content
    assert [row.path for row in response.context["cl"].result_list] == ["/first", "/second"]
    newest_first = admin_client.get(f"{EXCHANGES}?o=-1").context["cl"].result_list
    assert [row.path for row in newest_first] == ["/second", "/first"]

"""The exchange admin's actions: replay (against the live sandbox) and export."""

import csv
import io
import json

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from api_client.admin.exchanges import REPLAY_LIMIT
from api_client.models import Exchange
from tests.helpers.exchanges import ago, create_exchange, make_exchange

LIST = reverse("admin:api_client_exchange_changelist")


def run_action(admin_client, action: str, exchanges=(), *, query: str = "", **extra):
    data = {"action": action, "_selected_action": [e.pk for e in exchanges], "index": 0, **extra}
    return admin_client.post(f"{LIST}{query}", data, follow=False)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


# --- replay --------------------------------------------------------------------------------


def test_replay_sends_the_calls_again_and_reports_their_outcome(admin_client, api):
    created = api.post("items", json={"name": "widget"}, headers={"X-Trace": "t-1"})
    looked_up = api.get("echo", query={"q": "1"})
    originals = Exchange.objects.filter(pk__in=[created.exchange_id, looked_up.exchange_id])

    response = run_action(admin_client, "replay_selected", originals)

    assert response.status_code == 302
    [(level, message)] = messages_of(response)
    replays = Exchange.objects.filter(kind=Exchange.Kind.API).exclude(pk__in=originals)
    batch_id = replays.first().batch_id
    assert level == "success"
    assert message.startswith("Replayed 2 of 2 exchanges as batch <a href=")
    assert f'href="{LIST}?batch_id={batch_id}"' in message
    assert message.endswith(": 200 x 1, 201 x 1.")
    post = replays.get(method="POST")
    assert json.loads(post.request_body) == {"name": "widget"}
    assert post.request_headers["X-Trace"] == "t-1"
    assert replays.get(method="GET").path == "/echo?q=1"
    assert {r.request_id for r in replays} == {response["X-Request-ID"]}
    assert Exchange.objects.filter(kind=Exchange.Kind.API, path="/items").count() == 2


def test_replay_skips_what_it_cannot_send_faithfully_and_says_why(admin_client, api):
    api.get("whoami")
    token_request = Exchange.objects.get(kind=Exchange.Kind.TOKEN)
    secret_body = create_exchange(
        method="POST", path="/login", request_body='{"password": "[redacted]"}'
    )
    secret_query = create_exchange(path="/x?api_key=%5Bredacted%5D")
    secret_header = create_exchange(path="/x", request_headers={"X-Api-Key": "[redacted]"})
    truncated = create_exchange(method="POST", path="/x", request_body='{"a": [1, 2')

    response = run_action(
        admin_client,
        "replay_selected",
        [token_request, secret_body, secret_query, secret_header, truncated],
    )

    [(level, message)] = messages_of(response)
    assert level == "error"
    assert message.startswith("Skipped 5 exchanges that could not be rebuilt in full: ")
    assert "token requests are the client&#x27;s own. (1)" in message
    assert "Some body fields were redacted in the log. (1)" in message
    assert "The query parameter api_key was redacted in the log. (1)" in message
    assert "The X-Api-Key header was redacted in the log. (1)" in message
    assert "The recorded body is not JSON, so it was left out. (1)" in message
    assert Exchange.objects.filter(kind=Exchange.Kind.API).count() == 5  # 1 call + 4 made up


def test_replay_of_a_failing_call_is_a_warning(admin_client, api):
    missing = api.get("items/999999")
    skipped = create_exchange(kind=Exchange.Kind.TOKEN)

    response = run_action(
        admin_client,
        "replay_selected",
        Exchange.objects.filter(pk__in=[missing.exchange_id, skipped.pk]),
    )

    [(level, message)] = messages_of(response)
    assert level == "warning"
    assert "Replayed 1 of 2 exchanges as batch" in message
    assert (
        ": 404 x 1. Skipped 1 exchange that could not be rebuilt in full: Only API calls" in message
    )


def test_replay_reports_an_unreachable_api(admin_client, configure_api, closed_port):
    call = create_exchange(path="/whoami")
    configure_api(BASE_URL=f"http://127.0.0.1:{closed_port}/", RETRIES=0)

    response = run_action(admin_client, "replay_selected", [call])

    [(level, message)] = messages_of(response)
    assert level == "warning"
    assert message.endswith(": connection_error x 1.")
    assert Exchange.objects.filter(error_code="connection_error").count() == 1


@pytest.mark.django_db
def test_replay_refuses_too_many_at_once(admin_client):
    Exchange.objects.bulk_create([make_exchange() for _ in range(REPLAY_LIMIT + 1)])

    response = run_action(admin_client, "replay_selected", Exchange.objects.all())

    [(level, message)] = messages_of(response)
    assert level == "error"
    assert (
        message == f"Select at most {REPLAY_LIMIT} exchanges to replay at once; nothing was sent."
    )
    assert Exchange.objects.count() == REPLAY_LIMIT + 1


@pytest.mark.django_db
def test_an_action_without_a_selection_does_nothing(admin_client):
    create_exchange()

    response = run_action(admin_client, "replay_selected", [])

    assert "Items must be selected" in messages_of(response)[0][1]
    assert Exchange.objects.count() == 1


# --- export --------------------------------------------------------------------------------


@pytest.fixture
def two() -> list[Exchange]:
    return [
        create_exchange(
            path="/first",
            created_at=ago(minutes=5),
            request_body='{"a": 1}',
            response_body='=HYPERLINK("http://evil")',
            request_id="r-1",
        ),
        create_exchange(path="/second", status=None, error_code="timeout", error="-1 s left"),
    ]


@pytest.mark.django_db
def test_export_as_json_lines_streams_every_column_oldest_first(admin_client, two):
    response = run_action(admin_client, "export_jsonl", reversed(two))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"].startswith('attachment; filename="exchanges-')
    assert response["Content-Disposition"].endswith('.jsonl"')
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [r["path"] for r in rows] == ["/first", "/second"]
    assert rows[0]["request_body"] == '{"a": 1}'  # the list defers bodies; the export does not
    assert rows[0]["response_headers"] == {"Content-Type": "application/json"}
    assert rows[0]["request_id"] == "r-1"
    assert rows[1]["status"] is None and rows[1]["error_code"] == "timeout"
    assert rows[0]["created_at"] == two[0].created_at.isoformat()


@pytest.mark.django_db
def test_export_as_csv_has_a_header_and_defuses_formulas(admin_client, two):
    response = run_action(admin_client, "export_csv", two)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["path"] for r in rows] == ["/first", "/second"]
    assert rows[0]["response_body"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["error"] == "'-1 s left"
    assert json.loads(rows[0]["request_headers"]) == {"Accept": "application/json"}
    assert rows[1]["status"] == ""


@pytest.mark.django_db
def test_export_of_all_matching_rows_follows_the_filters(admin_client):
    Exchange.objects.bulk_create(
        [make_exchange(path=f"/ok/{n}") for n in range(60)]
        + [make_exchange(path=f"/bad/{n}", status=500) for n in range(3)]
    )
    first_page = Exchange.objects.filter(status=200)[:1]

    response = run_action(
        admin_client, "export_jsonl", first_page, query="?status_class=2", select_across=1
    )

    paths = [json.loads(line)["path"] for line in b"".join(response.streaming_content).splitlines()]
    assert len(paths) == 60
    assert all(p.startswith("/ok/") for p in paths)

"""Secrets stay secret by value as well as by name, whatever a hostile API echoes back: in the
exchange log, the logs, the console's JSON, the admin, exports, commands and error pages."""

import base64
import io
import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import path

from api_client.exceptions import InvalidClientError
from api_client.models import Exchange, Token
from tests.helpers.hostile import CONFIG
from tests.pocclient.helpers import ConsoleClient

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE_ID, HOSTILE_SECRET = CONFIG["client_id"], CONFIG["client_secret"]
BASIC = base64.b64encode(f"{HOSTILE_ID}:{HOSTILE_SECRET}".encode()).decode()


def forms_of(secret: str) -> list[str]:
    """What a leak of ``secret`` could look like."""
    return [secret, base64.b64encode(secret.encode()).decode().rstrip("=")]


def assert_nowhere(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        for form in forms_of(secret):
            assert form not in text, f"{form!r} leaked"


def stored_text() -> str:
    return "\n".join(
        json.dumps(row, default=str)
        for row in Exchange.objects.values(
            "url", "path", "request_headers", "request_body", "response_headers",
            "response_body", "error",
        )
    )  # fmt: skip


def test_an_api_echoing_the_token_leaves_it_in_no_stored_or_logged_text(
    hostile_client, hostile, caplog
):
    caplog.set_level(logging.DEBUG)

    response = hostile_client.get("echo-secrets")

    token = hostile.issued[-1]
    assert token in response.text  # the API did echo it, in many spellings
    assert_nowhere(stored_text(), [token, HOSTILE_SECRET, BASIC])
    assert_nowhere(caplog.text, [token, HOSTILE_SECRET, BASIC])
    stored = Exchange.objects.get(pk=response.exchange_id)
    assert stored.response_headers["Set-Cookie"] == "[redacted]"
    assert "[redacted]" in stored.response_headers["Location"]
    assert "[redacted]" in stored.response_headers["WWW-Authenticate"]
    body = json.loads(stored.response_body)
    assert body["unicode_escaped"] == "[redacted]"  # found after decoding \\u escapes
    assert body["base64"] == "[redacted]"


@pytest.fixture
def engineer(db):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("hostile-engineer", is_staff=True)
    user.groups.add(Group.objects.get(name="Console users"))
    return user


@pytest.fixture
def console(engineer) -> ConsoleClient:
    client = ConsoleClient()
    client.force_login(engineer)
    return client


def test_the_consoles_answer_scrubs_an_echoed_token_in_every_spelling(
    console, hostile_config, hostile
):
    hostile_config()

    response = console.post_json("/api/send", {"method": "GET", "path": "echo-secrets"})

    assert response.status_code == 200
    token = hostile.issued[-1]
    assert_nowhere(response.content.decode(), [token, HOSTILE_SECRET, BASIC])
    data = response.json()
    assert data["body"]["unicode_escaped"] == "[redacted]"
    assert data["headers"]["Set-Cookie"] == "[redacted]"
    detail = console.get(f"/api/exchanges/{data['id']}").content.decode()
    assert_nowhere(detail, [token])


def test_the_admin_and_its_exports_show_no_echoed_token(hostile_client, hostile, engineer):
    response = hostile_client.get("echo-secrets")
    token = hostile.issued[-1]
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", password="x"))

    page = admin.get(f"/admin/api_client/exchange/{response.exchange_id}/change/")
    exports = [
        b"".join(
            admin.post(
                "/admin/api_client/exchange/",
                {"action": action, "_selected_action": [response.exchange_id]},
            ).streaming_content
        ).decode()
        for action in ("export_jsonl", "export_csv")
    ]

    assert page.status_code == 200
    for text in (page.content.decode(), *exports):
        assert_nowhere(text, [token, HOSTILE_SECRET, BASIC])


def test_a_token_error_echoing_the_credentials_is_scrubbed_everywhere_it_is_shown(
    hostile_config, hostile, console
):
    client = hostile_config()
    hostile.configure(token_mode="echo_error")
    leaks = [HOSTILE_SECRET, BASIC, f"{HOSTILE_ID}:{HOSTILE_SECRET}"]

    with pytest.raises(InvalidClientError) as caught:
        client.tokens.ensure(force=True)
    refreshed = console.post_json("/_token_refresh", {"force": True})
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(Exception):  # noqa: B017 (CommandError; its text is checked below)
        call_command("refresh_token", "--force", stdout=out, stderr=err)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", password="x"))
    token_page = admin.get("/admin/api_client/token/").content.decode()

    row = Token.objects.get()
    assert "client secret '[redacted]' is wrong" in caught.value.message
    assert len(row.last_error) <= 500
    for text in (
        caught.value.message,
        row.last_error,
        refreshed.content.decode(),
        out.getvalue() + err.getvalue(),
        token_page,
        stored_text(),
    ):
        for leak in leaks:
            assert leak not in text, leak
    assert refreshed.status_code == 502


def test_the_retry_warning_logs_the_url_without_secret_query_values(hostile_config, caplog):
    client = hostile_config(RETRIES=1)

    with caplog.at_level(logging.WARNING, logger="api_client"):
        client.get("status", query={"code": 503, "api_key": "query-secret-123"})

    assert "Retrying GET" in caplog.text
    assert "query-secret-123" not in caplog.text


def test_an_error_message_quoting_a_token_in_escaped_forms_is_scrubbed(hostile_client, hostile):
    hostile_client.get("slow")
    token = hostile.issued[-1]
    from api_client.exceptions import ApiConnectionError
    from api_client.messages import Outcome
    from api_client.models import Exchange as Row
    from api_client.recording import completion

    message = f"broke on {token!r} and {json.dumps({'t': token})} and {json.dumps(token)}"
    fields = completion(
        Row(method="GET", url="http://h/x", path="/x"),
        Outcome(error=ApiConnectionError(message)),
        secrets=hostile_client.tokens.held_secrets(),
        body_limit=1000,
    )
    row = Row(**fields)

    assert token not in row.error
    assert row.error.count("[redacted]") == 3


# --- Django's error page with debug on --------------------------------------------------------


def failing_view(request):
    from api_client.client import get_client

    client = get_client()
    token = client.tokens.get_token()  # noqa: F841 (a local the page would show)
    echoed = client.get("echo-secrets")  # noqa: F841 (its body and headers hold the token)
    raise RuntimeError("the view failed after calling the API")


urlpatterns = [path("test/fail-after-call", failing_view)]


def test_the_debug_error_page_shows_no_secret_in_frames_or_settings(
    hostile_config, hostile, settings
):
    hostile_config()
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    browser = Client(raise_request_exception=False)

    page = browser.get("/test/fail-after-call", headers={"Accept": "text/html"})

    html = page.content.decode()
    assert page.status_code == 500
    assert "the view failed after calling the API" in html  # it is the technical page
    assert "echoed" in html  # frames are shown, with their locals
    assert_nowhere(html, [hostile.issued[-1], HOSTILE_SECRET, BASIC])

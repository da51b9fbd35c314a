"""The token admin: what it shows (never the token) and "refresh now"."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from api_client.models import Token, credential_key
from sandbox import stats

LIST = reverse("admin:api_client_token_changelist")


def refresh_now(admin_client, *tokens: Token):
    response = admin_client.post(
        LIST, {"action": "refresh_now", "_selected_action": [t.pk for t in tokens], "index": 0}
    )
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def made_up_token(**fields) -> Token:
    values = {
        "credential_key": credential_key("http://other.example/token", "other"),
        "token_url": "http://other.example/token",
        "client_id": "other",
        "access_token": "other-access-token-0123456789",
        "refresh_token": "other-refresh-token-0123456789",
        "expires_at": timezone.now() + timedelta(minutes=30, seconds=5),
        "obtained_at": timezone.now() - timedelta(minutes=30),
    }
    values.update(fields)
    return Token.objects.create(**values)


@pytest.mark.django_db
def test_list_and_detail_show_a_masked_token_and_its_timing_never_the_token(admin_client):
    token = made_up_token(
        last_error="The token endpoint refused the client.",
        last_error_at=timezone.now(),
        refresh_count=3,
    )

    for url in (LIST, reverse("admin:api_client_token_change", args=[token.pk])):
        content = admin_client.get(url).content.decode()
        assert "othe…29 chars" in content
        assert token.access_token not in content
        assert token.refresh_token not in content
        assert "30 min" in content  # expires in
        assert "The token endpoint refused the client." in content
        assert "last refresh" in content.lower()


@pytest.mark.django_db
def test_an_expired_token_says_so(admin_client):
    made_up_token(expires_at=timezone.now() - timedelta(seconds=1))

    content = admin_client.get(LIST).content.decode()

    assert ">expired<" in content


@pytest.mark.django_db
def test_tokens_cannot_be_added_or_edited(admin_client):
    token = made_up_token()

    assert admin_client.get(reverse("admin:api_client_token_add")).status_code == 403
    change = reverse("admin:api_client_token_change", args=[token.pk])
    assert admin_client.post(change, {"client_id": "x"}).status_code == 403


def test_refresh_now_obtains_a_new_token(admin_client, api):
    api.get("whoami")
    before = Token.objects.get()

    messages = refresh_now(admin_client, before)

    after = Token.objects.get()
    assert messages[0][0] == "success"
    assert messages[0][1].startswith("Refreshed; the new token expires at ")
    assert after.access_token != before.access_token
    assert after.refresh_count == before.refresh_count + 1
    assert stats.grant_count() == 2


def test_refresh_now_reports_a_refusal(admin_client, api, configure_api):
    api.get("whoami")
    configure_api(CLIENT_SECRET="wrong-secret")

    messages = refresh_now(admin_client, Token.objects.get())

    assert messages[0][0] == "error"
    assert messages[0][1].startswith("Refresh failed: ")
    assert "POC_API_CLIENT_SECRET" in messages[0][1]


def test_refresh_now_refuses_another_credential_s_token(admin_client, api_config):
    other = made_up_token()

    messages = refresh_now(admin_client, other)

    assert messages[0][0] == "warning"
    assert "Only the token of the configured credential" in messages[0][1]
    assert stats.grant_count() == 0

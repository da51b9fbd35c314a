"""The token admin: what it shows (never the token) and "refresh now"."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from api_client.admin.tokens import expiry
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
    assert re.fullmatch(
        r"Refreshed the token of 'default'; it expires at "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, in 59 min\.",
        messages[0][1],
    ), messages[0][1]
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
    assert "only a connection's current token can be refreshed" in messages[0][1]
    assert stats.grant_count() == 0


NOW = datetime(2026, 12, 1, 21, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_in", "said"),
    [
        (timedelta(hours=1) - timedelta(seconds=1), "2026-12-01 22:30:04 UTC, in 59 min"),
        (timedelta(seconds=45), "2026-12-01 21:30:50 UTC, in 45 s"),
        (timedelta(hours=3, minutes=5), "2026-12-02 00:35:05 UTC, in 3 h 5 min"),
        (timedelta(seconds=-1), "2026-12-01 21:30:04 UTC, already expired"),
    ],
)
def test_the_expiry_is_said_as_a_time_and_how_soon(expires_in, said):
    assert expiry(NOW + expires_in, NOW) == said


def test_the_expiry_follows_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"

    assert expiry(NOW + timedelta(minutes=10), NOW) == "2026-12-01 22:40:05 CET, in 10 min"


@pytest.mark.django_db
def test_long_urls_and_errors_are_cut_in_the_list_and_whole_in_their_title(admin_client):
    long_url = "https://login.example/" + "a" * 200 + "/token"
    long_error = "The token endpoint answered 400" + " with a very long reason" * 20
    failed_at = datetime(2026, 12, 1, 20, 15, 30, tzinfo=UTC)
    token = made_up_token(token_url=long_url, last_error=long_error, last_error_at=failed_at)

    content = admin_client.get(LIST).content.decode()

    url_cell = re.search(r'<td class="field-short_token_url">(.*?)</td>', content).group(1)
    error_cell = re.search(r'<td class="field-short_last_error">(.*?)</td>', content).group(1)
    assert url_cell == f'<span title="{long_url}">{long_url[:59]}…</span>'
    assert error_cell == (
        f'<span title="2026-12-01 20:15:30: {long_error}">{long_error[:59]}…</span>'
    )
    detail = admin_client.get(reverse("admin:api_client_token_change", args=[token.pk]))
    assert long_url in detail.content.decode()
    assert long_error in detail.content.decode()

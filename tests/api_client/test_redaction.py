"""No token or client secret in any Exchange row or captured log line."""

import logging

from api_client import redaction
from api_client.models import Exchange, Token

SECRET = "sandbox-secret"


def every_stored_text() -> str:
    parts = []
    for exchange in Exchange.objects.all():
        parts += [
            exchange.url,
            exchange.path,
            str(exchange.request_headers),
            exchange.request_body,
            str(exchange.response_headers),
            exchange.response_body,
            exchange.error,
        ]
    return "\n".join(parts)


def test_no_token_or_secret_reaches_the_exchange_log_or_the_logs(api, caplog, configure_api):
    caplog.set_level(logging.DEBUG)
    seen_tokens = set()

    def remember() -> None:
        row = Token.objects.get()
        seen_tokens.update({row.access_token, row.refresh_token} - {""})

    api.get("whoami")
    remember()
    api.post("echo", json={"password": "hunter22", "nested": {"api_key": "k-123456789"}})
    api.get("echo", query={"access_token": "query-token-123"})
    api.tokens.ensure(force=True)  # a refresh_token grant: the old refresh token in the body
    remember()
    api.get("echo", headers={"X-Api-Key": "header-key-123"})
    body_client = configure_api(CLIENT_AUTH="body")
    body_client.tokens.ensure(force=True)
    remember()

    stored = every_stored_text()
    logged = caplog.text
    assert len(seen_tokens) >= 4
    for secret in (
        *seen_tokens,
        SECRET,
        "hunter22",
        "k-123456789",
        "query-token-123",
        "header-key-123",
    ):
        assert secret not in stored, secret
        assert secret not in logged, secret
    assert "Bearer [redacted]" in stored
    assert "Basic [redacted]" in stored
    assert "Bearer [redacted]" in logged


def test_headers_keep_the_scheme_but_not_the_credential():
    headers = redaction.redact_headers(
        {"Authorization": "Bearer abc.def", "Cookie": "s=1", "X-Trace": "t"}
    )

    assert headers == {"Authorization": "Bearer [redacted]", "Cookie": "[redacted]", "X-Trace": "t"}


def test_json_fields_are_redacted_at_any_depth():
    body = '{"a": [{"client_secret": "x"}], "refresh_token": "y", "token_type": "Bearer"}'

    redacted = redaction.redact_body(body, "application/json")

    assert '"client_secret": "[redacted]"' in redacted
    assert '"refresh_token": "[redacted]"' in redacted
    assert "x" not in redacted.replace("[redacted]", "")


def test_form_fields_are_redacted():
    redacted = redaction.redact_body(b"grant_type=refresh_token&refresh_token=r1", redaction._FORM)

    assert redacted == "grant_type=refresh_token&refresh_token=%5Bredacted%5D"


def test_literal_secrets_are_scrubbed_from_plain_text():
    assert redaction.scrub("token is abcdefgh12345!", ["abcdefgh12345"]) == "token is [redacted]!"
    assert redaction.scrub("short x", ["x"]) == "short x"  # too short to scrub blindly


def test_secret_query_parameters_are_redacted_in_urls():
    url = redaction.redact_url("http://h/a?page=2&api_key=zzz")

    assert url == "http://h/a?page=2&api_key=%5Bredacted%5D"

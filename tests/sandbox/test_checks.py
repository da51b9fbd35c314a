import pytest

from sandbox import conf
from sandbox.checks import check_settings


def test_default_settings_pass_the_check():
    assert check_settings() == []


def test_missing_optional_keys_get_defaults(settings):
    settings.SANDBOX = {"CLIENTS": {"a": "b"}}

    loaded = conf.load()

    assert loaded.token_lifetime == conf.DEFAULT_TOKEN_LIFETIME
    assert (loaded.issue_refresh_tokens, loaded.omit_expires_in) == (True, False)
    assert loaded.scopes == ("read", "write")


@pytest.mark.parametrize(
    "sandbox",
    [
        [],
        {"CLIENTS": {"a": ""}},
        {"CLIENTS": "a:b"},
        {"CLIENTS": {}, "TOKEN_LIFETIME": 0},
        {"CLIENTS": {}, "TOKEN_LIFETIME": "60"},
        {"CLIENTS": {}, "ISSUE_REFRESH_TOKENS": "no"},
        {"CLIENTS": {}, "OMIT_EXPIRES_IN": 1},
        {"CLIENTS": {}, "SCOPES": ""},
        {"CLIENTS": {}, "SCOPES": 'read "quoted"'},
    ],
)
def test_malformed_settings_fail_the_check(settings, sandbox):
    settings.SANDBOX = sandbox

    [error] = check_settings()

    assert error.id == "sandbox.E001"
    assert "SANDBOX" in error.msg
    assert error.hint

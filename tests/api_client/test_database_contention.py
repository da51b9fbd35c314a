"""Another process holds the database's write lock for longer than we are willing to wait.

On SQLite that is the busy timeout (``POC_SQLITE_BUSY_TIMEOUT``), on PostgreSQL the
``lock_timeout`` (``POC_PG_LOCK_TIMEOUT``); both are cut to half a second here. Whatever was
waiting fails with a clear error, nothing is left half-written, and once the lock is gone the
next request succeeds without waiting for anything to expire.
"""

import pytest
from django.db import connection
from django.utils import timezone

from api_client import tokens
from api_client.exceptions import LedgerError, TokenStorageError
from api_client.models import Exchange, Token
from sandbox import stats
from tests.helpers.processes import write_lock_held_by_another_process, writers_give_up_after

LOCK_WAIT_MESSAGES = ("database is locked", "lock timeout")


@pytest.fixture
def short_lock_wait(api):
    """Writers of this thread give up after 0.5 s; the token is in the database already."""
    api.get("whoami")
    with writers_give_up_after(0.5):
        yield


def token_row() -> dict:
    return Token.objects.values().get()


def expire_the_token() -> None:
    Token.objects.update(expires_at=timezone.now())
    tokens.clear_cache()


def assert_database_intact() -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchall() == [("ok",)]


def test_a_call_that_cannot_be_written_ahead_is_not_sent_and_says_so(api, short_lock_wait, caplog):
    exchanges, token = Exchange.objects.count(), token_row()
    served = stats.snapshot()["requests"]["total"]

    with write_lock_held_by_another_process(), pytest.raises(LedgerError) as caught:
        api.get("echo")

    assert "could not record the call" in caught.value.message
    assert stats.snapshot()["requests"]["total"] == served  # nothing reached the API
    [record] = [r for r in caplog.records if r.getMessage().startswith("Could not record")]
    assert record.getMessage().startswith("Could not record the exchange for GET /echo")
    assert any(text in record.getMessage() for text in LOCK_WAIT_MESSAGES)
    assert Exchange.objects.count() == exchanges
    assert token_row() == token
    assert api.get("echo").exchange_id == Exchange.objects.latest("id").pk
    assert_database_intact()


def test_token_refresh_that_cannot_take_its_lease_fails_clearly_and_sends_nothing(
    api, short_lock_wait
):
    expire_the_token()
    token, grants = token_row(), stats.grant_count()

    with write_lock_held_by_another_process(), pytest.raises(TokenStorageError) as caught:
        api.get("whoami")

    assert "database is busy" in caught.value.message and "nothing was sent" in caught.value.message
    assert any(text in caught.value.message for text in LOCK_WAIT_MESSAGES)
    assert stats.grant_count() == grants  # the token endpoint was never asked
    assert token_row() == token  # no lease left behind
    assert api.get("whoami").ok
    assert stats.grant_count() == grants + 1
    assert_database_intact()


def test_token_that_cannot_be_stored_after_the_grant_is_still_used(
    api, short_lock_wait, monkeypatch, caplog
):
    """The lock is taken while the token request is in flight: the new token cannot be stored.

    The call goes on with it (it is valid; the process keeps it), the stored token and its
    lease are as before the write failed, and the lease runs out by itself.
    """
    expire_the_token()
    before = token_row()
    grant = api.tokens._grant
    holder = write_lock_held_by_another_process()

    remember = api.tokens._remember

    def grant_then_lose_the_database(row):
        payload = grant(row)
        holder.__enter__()
        return payload

    def remember_then_get_it_back(row):  # the call's own record needs the database again
        remember(row)
        holder.__exit__(None, None, None)

    monkeypatch.setattr(api.tokens, "_grant", grant_then_lose_the_database)
    monkeypatch.setattr(api.tokens, "_remember", remember_then_get_it_back)
    response = api.get("whoami")

    assert response.ok
    assert "could not be stored" in caplog.text
    after = token_row()
    assert after["access_token"] == before["access_token"]
    assert after["lease_owner"]  # held until it runs out: other processes wait, then refresh
    monkeypatch.undo()
    assert api.get("whoami").ok  # from this process's cache, without waiting for the lease
    assert_database_intact()

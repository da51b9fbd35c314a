"""Secrets at rest: tokens stored encrypted under POC_ENCRYPTION_KEY, read back in the clear,
re-obtained when they cannot be decrypted, rotated to a new key, and absent from a dump."""

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Value
from django.urls import reverse

from api_client import encryption, grants, tokens
from api_client.ledger import LEDGER
from api_client.models import Token, credential_key
from sandbox import stats
from tests.helpers.processes import ROOT, database_url_for_subprocess

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
BEFORE, AFTER = ("api_client", "0008_unknown_index"), ("api_client", "0009_encrypt_tokens")
LATEST = ("api_client", "0011_connections")


def raw(name: str) -> str:
    """The column ``name`` of the one token row, as the database holds it."""
    return Token.objects.values_list(encryption.stored(name), flat=True).get()


def set_raw(**values: str) -> None:
    Token.objects.update(
        **{n: Value(v, output_field=models.TextField()) for n, v in values.items()}
    )


def use_keys(settings, *keys: str) -> None:
    """As if the process restarted with ``POC_ENCRYPTION_KEY="k1,k2"``: nothing cached."""
    settings.POC_ENCRYPTION_KEYS = list(keys)
    tokens.clear_cache()


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_key", *args, stdout=out)
    return out.getvalue()


def credentials(api) -> set[str]:
    config = api.tokens.config
    return {config.CLIENT_SECRET, grants.basic_credentials(config).removeprefix("Basic ")}


def issued_tokens(api) -> list[str]:
    """Every access and refresh token the sandbox issued to ``api``'s credential so far."""
    return [s for s in api.tokens.held_secrets() if s not in credentials(api)]


# --- storage -----------------------------------------------------------------------------------


def test_tokens_are_stored_encrypted_and_read_back_in_the_clear(api, settings):
    use_keys(settings, KEY_A)
    assert api.get("whoami").status == 200

    row = Token.objects.get()
    assert row.access_token and row.refresh_token
    for name in ("access_token", "refresh_token"):
        stored = raw(name)
        assert stored != getattr(row, name)
        assert getattr(row, name) not in stored
        assert Fernet(KEY_A).decrypt(stored.encode()).decode() == getattr(row, name)


@pytest.mark.django_db
def test_an_empty_token_is_stored_empty_and_each_encryption_differs(settings):
    use_keys(settings, KEY_A)
    Token.objects.create(credential_key="k", token_url="u", client_id="c", access_token="same")

    assert raw("refresh_token") == ""
    assert Token.objects.filter(refresh_token="").exists()
    assert encryption.encrypt("same") != encryption.encrypt("same")
    assert Token.objects.get().access_token == "same"


def test_a_token_under_an_unknown_key_is_obtained_anew_with_a_warning(api, settings, caplog):
    use_keys(settings, KEY_A)
    api.get("whoami")
    old = Token.objects.get()
    old_stored = raw("access_token")

    use_keys(settings, KEY_B)  # the key was changed without a rotation
    with caplog.at_level(logging.WARNING, logger="api_client.encryption"):
        assert api.get("whoami").status == 200

    new = Token.objects.get()
    assert new.access_token and new.access_token != old.access_token
    assert stats.grant_count("client_credentials") == 2  # the refresh token was unreadable too
    assert Fernet(KEY_B).decrypt(raw("access_token").encode()).decode() == new.access_token
    warnings = [r.getMessage() for r in caplog.records if r.name == "api_client.encryption"]
    assert warnings and "could not be decrypted with any key of POC_ENCRYPTION_KEY" in warnings[0]
    for secret in (old.access_token, old.refresh_token, old_stored):
        assert secret not in caplog.text


def test_a_corrupted_token_is_treated_as_missing_never_a_crash(api, settings, admin_client):
    use_keys(settings, KEY_A)
    api.get("whoami")
    set_raw(access_token=raw("access_token")[:-5] + "AAAAA", refresh_token="not even base64 !")
    tokens.clear_cache()

    row = Token.objects.get()
    assert (row.access_token, row.refresh_token) == ("", "")
    assert api.tokens.status().state == "missing"
    assert admin_client.get(reverse("admin:api_client_token_changelist")).status_code == 200

    assert api.get("whoami").status == 200
    assert stats.grant_count("client_credentials") == 2


def test_decryption_errors_never_carry_the_value(settings):
    use_keys(settings, KEY_A)
    stored = Fernet(KEY_B).encrypt(b"secret-token-value").decode()

    with pytest.raises(encryption.DecryptionError) as raised:
        encryption.decrypt(stored)

    assert stored not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


# --- keys and checks ---------------------------------------------------------------------------


def ids(**kwargs) -> list[str]:
    return [m.id for m in run_checks(**kwargs) if m.id and m.id.startswith("api_client.")]


def test_without_a_key_debug_uses_a_development_key_derived_from_the_secret_key(settings):
    use_keys(settings)
    settings.DEBUG = True
    stored = encryption.encrypt("dev-token")
    key = encryption.development_key()

    assert Fernet(key).decrypt(stored.encode()) == b"dev-token"
    settings.SECRET_KEY = "another secret key, another development key"
    assert encryption.development_key() != key
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(stored)


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_the_development_key_is_a_deploy_warning_not_an_error(settings):
    use_keys(settings)
    settings.DEBUG = True

    assert "api_client.E003" not in ids()
    assert "api_client.W002" not in ids()  # not on the stderr of every command
    assert "api_client.W002" in ids(include_deployment_checks=True)
    checked = run_checks(include_deployment_checks=True)
    [warning] = [m for m in checked if m.id == "api_client.W002"]
    assert "development key derived from DJANGO_SECRET_KEY" in warning.msg


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_without_a_key_and_debug_off_the_check_fails_and_nothing_is_encrypted(settings):
    use_keys(settings)
    settings.DEBUG = False

    [error] = [m for m in run_checks() if m.id == "api_client.E003"]
    assert error.msg.startswith("POC_ENCRYPTION_KEY is not set and DJANGO_DEBUG is off")
    assert encryption.GENERATE in error.hint
    assert "W002" not in str(ids(include_deployment_checks=True))
    with pytest.raises(ImproperlyConfigured, match="POC_ENCRYPTION_KEY is not set"):
        encryption.encrypt("x")


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_a_bad_key_is_an_error_that_never_quotes_it(settings):
    bad = "this-is-not-a-fernet-key-but-it-is-secret"
    use_keys(settings, KEY_A, bad)

    errors = [m for m in run_checks() if m.id == "api_client.E004"]

    assert [e.msg for e in errors] == [
        "POC_ENCRYPTION_KEY is not usable: its key 2 of 2 is not a Fernet key (32 url-safe "
        f"base64-encoded bytes, 44 characters); it has {len(bad)} characters."
    ]
    assert bad not in errors[0].hint
    with pytest.raises(ImproperlyConfigured) as raised:
        encryption.encrypt("x")
    assert bad not in str(raised.value)


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_several_good_keys_pass_the_checks(settings):
    use_keys(settings, KEY_B, KEY_A)

    assert not {"api_client.E003", "api_client.E004"} & set(ids(include_deployment_checks=True))


def manage(*argv: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POC_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_key(tmp_path):
    result = manage(
        "migrate",
        "--no-input",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="s" * 50,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )

    assert result.returncode == 1
    assert "(api_client.E003) POC_ENCRYPTION_KEY is not set" in result.stderr
    assert encryption.GENERATE in result.stderr
    assert "Applying" not in result.stdout


# --- rotation ----------------------------------------------------------------------------------


def test_rotation_with_live_tokens_keeps_them_readable_under_the_new_key_alone(api, settings):
    use_keys(settings, KEY_A)
    api.get("whoami")
    issued = Token.objects.get()

    # Deployed with POC_ENCRYPTION_KEY="B,A", then the command, in a process of its own.
    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_encryption_key"],
        cwd=ROOT,
        env={
            **os.environ,
            "POC_ENCRYPTION_KEY": f"{KEY_B}, {KEY_A}",
            "DATABASE_URL": database_url_for_subprocess(),
            "DJANGO_LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Done! Re-encrypted 2 secrets of 1 token and 0 connections under the newest key of "
        "POC_ENCRYPTION_KEY.\n"
    )
    assert issued.access_token not in result.stdout + result.stderr

    use_keys(settings, KEY_B)  # the old key dropped
    assert Token.objects.get().access_token == issued.access_token
    assert api.get("whoami").status == 200
    assert api.tokens.ensure(force=True)[1]  # the rotated refresh token is good too
    assert stats.grant_count("client_credentials") == 1
    assert stats.grant_count("refresh_token") == 1


def test_without_rotation_the_new_key_alone_cannot_read_the_old_tokens(api, settings):
    use_keys(settings, KEY_A)
    api.get("whoami")

    use_keys(settings, KEY_B, KEY_A)
    assert Token.objects.get().access_token  # the old key still reads it
    use_keys(settings, KEY_B)
    assert Token.objects.get().access_token == ""


def test_rotation_leaves_what_it_cannot_decrypt_and_exits_1(api, settings):
    use_keys(settings, KEY_A)
    api.get("whoami")
    under_a = (raw("access_token"), raw("refresh_token"))

    use_keys(settings, KEY_B)  # A forgotten: the sandbox's token is unreadable, a new one is not
    Token.objects.create(
        credential_key=credential_key("http://other.example/token", "other"),
        token_url="http://other.example/token",
        client_id="other",
        access_token="other-access-token",
    )
    with pytest.raises(CommandError) as raised:
        rotate()

    assert raised.value.returncode == 1
    assert str(raised.value).startswith(
        "Could not decrypt 1 token with any key of POC_ENCRYPTION_KEY; left as stored"
    )
    assert "add it after the newest in POC_ENCRYPTION_KEY and run this again" in str(raised.value)
    kept = Token.objects.filter(client_id="sandbox-client").values_list(
        encryption.stored("access_token"), encryption.stored("refresh_token")
    )
    assert kept.get() == under_a

    use_keys(settings, KEY_A, KEY_B)  # with the forgotten key back, a rerun gets them all
    assert rotate().startswith("Done! Re-encrypted 3 secrets of 2 tokens")
    use_keys(settings, KEY_A)
    assert Token.objects.get(client_id="other").access_token == "other-access-token"
    assert Token.objects.get(client_id="sandbox-client").access_token


def test_rotation_can_clear_what_it_cannot_decrypt(api, settings):
    use_keys(settings, KEY_A)
    api.get("whoami")

    use_keys(settings, KEY_B)
    out = rotate("--clear-undecryptable")

    assert out.splitlines() == [
        "Done! Re-encrypted 0 secrets of 0 tokens and 0 connections under the newest key of "
        "POC_ENCRYPTION_KEY.",
        "Cleared 1 token that no key of POC_ENCRYPTION_KEY decrypts; they are obtained anew at "
        "the next call.",
    ]
    assert (raw("access_token"), raw("refresh_token")) == ("", "")
    assert api.get("whoami").status == 200
    assert stats.grant_count("client_credentials") == 2


@pytest.mark.django_db
def test_rotation_with_no_tokens_says_so(settings):
    use_keys(settings, KEY_A)

    assert rotate() == (
        "Done! Re-encrypted 0 secrets of 0 tokens and 0 connections under the newest key of "
        "POC_ENCRYPTION_KEY.\n"
    )


# --- the migration -----------------------------------------------------------------------------


def migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_plaintext_rows_and_reverses(settings):
    use_keys(settings, KEY_A)
    try:
        old_apps = migrate(BEFORE)
        OldToken = old_apps.get_model("api_client", "Token")
        OldToken.objects.create(
            credential_key="a",
            token_url="u",
            client_id="a",
            access_token="plain-access-a",
            refresh_token="plain-refresh-a",
        )
        OldToken.objects.create(credential_key="b", token_url="u", client_id="b")

        NewToken = migrate(AFTER).get_model("api_client", "Token")

        stored = dict(NewToken.objects.values_list("client_id", encryption.stored("access_token")))
        assert stored["b"] == ""
        assert Fernet(KEY_A).decrypt(stored["a"].encode()) == b"plain-access-a"
        assert NewToken.objects.get(client_id="a").refresh_token == "plain-refresh-a"

        NewToken.objects.create(credential_key="c", token_url="u", client_id="c", access_token="c1")
        use_keys(settings, KEY_B)  # "c" is readable under B, "a" no longer
        NewToken.objects.filter(client_id="c").update(access_token="plain-access-c")
        migrate(BEFORE)

        plain = dict(OldToken.objects.values_list("client_id", "access_token"))
        assert plain == {"a": "", "b": "", "c": "plain-access-c"}
    finally:
        migrate(LATEST)


# --- what a dump and the admin show -----------------------------------------------------------


def obtain_and_refresh(api, settings) -> list[str]:
    """A token, then a refresh (a rotated refresh token): everything the sandbox issued."""
    use_keys(settings, KEY_A)
    api.get("whoami")
    api.tokens.ensure(force=True)
    assert stats.grant_count() == 2
    assert LEDGER.flush()  # the exchange log, token responses included, is in the database
    issued = issued_tokens(api)
    row = Token.objects.get()
    assert row.access_token in issued and row.refresh_token in issued
    assert len(issued) >= 4  # two access and two refresh tokens (and earlier tests')
    return issued


def test_a_dump_of_the_database_holds_no_token_in_the_clear(api, settings):
    issued = obtain_and_refresh(api, settings)
    if connection.vendor == "postgresql":
        postgresql_dump_is_clean(api, issued)
    else:
        sqlite_dump_and_file_are_clean(api, issued)


def sqlite_dump_and_file_are_clean(api, issued: list[str]) -> None:
    path = Path(connection.settings_dict["NAME"])

    with closing(sqlite3.connect(path)) as db:
        dump = "\n".join(db.iterdump())
    assert raw("access_token") in dump  # the dump has the row, encrypted
    if shutil.which("sqlite3"):
        dump += subprocess.run(
            ["sqlite3", str(path), ".dump"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    # The file and its WAL, read by another process: closing a descriptor of the database file
    # here would drop this process's SQLite locks (POSIX locks belong to the process).
    files = [str(p) for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    pages = subprocess.run(["cat", *files], capture_output=True, check=True, timeout=60).stdout
    for secret in [*issued, *credentials(api)]:
        assert secret not in dump
    # Free pages included, hence the tokens only: they are this test's own, whereas the
    # constant client credentials could be in a page any earlier test of the run wrote.
    for token in issued:
        assert token.encode() not in pages


def postgresql_dump_is_clean(api, issued: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token || ' ' || refresh_token FROM api_client_token")
        [(columns,)] = cursor.fetchall()
    dump = columns
    if shutil.which("pg_dump"):
        db = connection.settings_dict
        host, port = db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432)
        result = subprocess.run(
            ["pg_dump", "--data-only", "-h", host, "-p", port, "-U", db["USER"], db["NAME"]],
            env={**os.environ, "PGPASSWORD": db["PASSWORD"] or ""},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert raw("access_token") in result.stdout  # the dump has the row, encrypted
        dump += result.stdout
    for secret in [*issued, *credentials(api)]:
        assert secret not in dump


def test_the_admin_never_shows_a_stored_token(api, settings, admin_client):
    obtain_and_refresh(api, settings)
    row = Token.objects.get()
    stored = (raw("access_token"), raw("refresh_token"))

    for url in (
        reverse("admin:api_client_token_changelist"),
        reverse("admin:api_client_token_change", args=[row.pk]),
    ):
        page = admin_client.get(url).content.decode()
        assert row.masked_access_token in page
        for secret in (row.access_token, row.refresh_token, *stored):
            assert secret not in page

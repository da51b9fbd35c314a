"""A token endpoint that misbehaves, and an API that refuses every token: the lease is always
released, nothing unsendable is used, scopes never mix, and a refusal costs one grant."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api_client.exceptions import TokenEndpointError
from api_client.models import Exchange, Token
from api_client.tokens import REFUSES_FRESH_TOKENS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("expires_in", "problem"),
    [
        ("true", "not a number"),
        ('"abc"', "not a number"),
        ("-5", "not a positive number"),
        ("1e400", "not a positive number"),  # json reads it as infinity
        ("[3600]", "not a number"),
    ],
)
def test_a_bad_expires_in_releases_the_lease_and_records_why(
    hostile_client, hostile, expires_in, problem
):
    hostile.configure(token_mode="expires_in", expires_in=expires_in)

    with pytest.raises(TokenEndpointError) as caught:
        hostile_client.get("slow")

    assert problem in caught.value.message
    row = Token.objects.get()
    assert (row.lease_owner, row.lease_until) == ("", None)
    assert problem in row.last_error
    assert Exchange.objects.filter(kind=Exchange.Kind.API).get().attempts == 0  # never sent


def test_a_lifetime_of_1e30_is_clamped_rather_than_overflowing(hostile_client, hostile):
    hostile.configure(token_mode="expires_in", expires_in="1e30")

    assert hostile_client.get("slow").status == 200

    row = Token.objects.get()
    assert row.expires_at < timezone.now() + timedelta(days=367)
    assert row.lease_owner == ""


def test_after_a_failed_grant_the_next_caller_tries_again_at_once(hostile_client, hostile):
    hostile.configure(token_mode="expires_in", expires_in='"abc"')
    with pytest.raises(TokenEndpointError):
        hostile_client.get("slow")
    hostile.configure(token_mode="normal")

    assert hostile_client.get("slow").status == 200  # no lease left to wait out
    assert hostile.grants == 2


def test_a_200_kb_token_type_is_refused_and_not_quoted_whole(hostile_client, hostile):
    hostile.configure(token_mode="huge_token_type")

    with pytest.raises(TokenEndpointError) as caught:
        hostile_client.get("slow")

    assert "only Bearer tokens are supported" in caught.value.message
    assert len(caught.value.message) < 300
    assert len(Token.objects.get().last_error) <= 500


@pytest.mark.parametrize("bad", ["cr", "lf", "crlf", "non_latin1", "empty"])
def test_an_access_token_http_cannot_carry_is_refused_unquoted_and_never_used(
    hostile_client, hostile, bad
):
    from tests.helpers.hostile import BAD_TOKENS

    hostile.configure(token_mode="bad_token", bad_token=bad)

    with pytest.raises(TokenEndpointError) as caught:
        hostile_client.get("slow")

    if BAD_TOKENS[bad]:
        assert BAD_TOKENS[bad] not in caught.value.message
        assert BAD_TOKENS[bad].strip() not in Token.objects.get().last_error
    assert [r.path for r in hostile.received] == ["/oauth/token"]  # no API call made with it
    assert Token.objects.get().access_token == ""


def test_the_scope_is_part_of_a_tokens_identity(hostile_config, hostile):
    read = hostile_config(SCOPE="read")
    read.get("slow")
    write = hostile_config(SCOPE="write")
    write.get("slow")
    read_again = hostile_config(SCOPE="read")
    read_again.get("slow")

    assert hostile.scopes == ["read", "write"]  # the read token was reused, not the write one
    assert sorted(Token.objects.values_list("scope", flat=True)) == ["read", "write"]


def test_a_refresh_keeps_the_scope_the_token_was_granted_for(hostile_config, hostile):
    hostile.configure(issue_refresh=True)
    client = hostile_config(SCOPE="read write")
    client.get("slow")

    client.tokens.ensure(force=True)

    assert hostile.grant_types == ["client_credentials", "refresh_token"]
    assert hostile.scopes == ["read write", None]  # a refresh asks for no other scope
    assert Token.objects.get().scope == "read write"


def test_an_api_that_refuses_every_token_costs_one_refresh_then_cools_down(hostile_client, hostile):
    responses = [hostile_client.get("always-401") for _ in range(200)]

    assert {r.status for r in responses} == {401}
    assert hostile.grants == 2  # the first token, and one refresh after the first 401
    assert all(r.note == REFUSES_FRESH_TOKENS for r in responses)
    assert "scope" in responses[-1].note
    with pytest.raises(Exception, match="refuses fresh access tokens"):
        responses[-1].raise_for_status()

import re
import time

import pytest
from django.core import signing

from sandbox.tokens import (
    ACCESS_TOKEN_SALT,
    InvalidTokenError,
    hash_refresh_token,
    issue_access_token,
    make_access_token,
    new_refresh_token,
    verify_access_token,
)

B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750 2.1


def test_issued_token_verifies_with_its_claims():
    claims = verify_access_token(issue_access_token("c", "read", 60))

    assert (claims.client_id, claims.scope) == ("c", "read")
    assert time.time() + 55 < claims.expires_at <= time.time() + 60


def test_access_token_fits_rfc_6750_b64token():
    assert B64TOKEN.match(issue_access_token("c", "read write", 60))


def test_each_access_token_is_unique():
    assert issue_access_token("c", "read", 60) != issue_access_token("c", "read", 60)


def test_expired_token_is_refused():
    token = make_access_token("c", "read", expires_at=time.time() - 1)

    with pytest.raises(InvalidTokenError, match="expired"):
        verify_access_token(token)


def test_tampered_token_is_refused():
    token = issue_access_token("c", "read", 60)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")

    with pytest.raises(InvalidTokenError, match="signature"):
        verify_access_token(forged)


def test_token_signed_with_another_key_is_refused():
    payload = {"cid": "c", "scope": "read", "exp": time.time() + 60, "jti": "x"}
    other = signing.Signer(key="another-key", salt=ACCESS_TOKEN_SALT, sep=".")

    with pytest.raises(InvalidTokenError, match="signature"):
        verify_access_token(other.sign_object(payload))


def test_validly_signed_token_without_claims_is_malformed():
    token = signing.Signer(salt=ACCESS_TOKEN_SALT, sep=".").sign_object({"cid": "c"})

    with pytest.raises(InvalidTokenError, match="malformed"):
        verify_access_token(token)


@pytest.mark.parametrize("token", ["", "x" * 5000, "no-separator"])
def test_garbage_is_refused(token):
    with pytest.raises(InvalidTokenError):
        verify_access_token(token)


def test_refresh_token_hash_is_sha256_hex_of_the_token():
    token, token_hash = new_refresh_token()

    assert len(token) >= 40
    assert token_hash == hash_refresh_token(token)
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash)

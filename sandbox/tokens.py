"""Access and refresh tokens.

Access tokens are signed and self-contained (``django.core.signing`` with SECRET_KEY), so any
worker process can verify one without a database read. They use ``.`` rather than signing's
default ``:`` as separator so that they stay within RFC 6750's ``b64token`` alphabet, as a
strict client or proxy would expect of a real provider's token.

Refresh tokens are opaque random strings; only their SHA-256 hash is stored (see
``Grant.refresh_token_hash``), and each can be redeemed once.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass

from django.core import signing

ACCESS_TOKEN_SALT = "sandbox.access-token"  # noqa: S105 (a salt, not a secret)
MAX_ACCESS_TOKEN_LENGTH = 4096


class InvalidTokenError(Exception):
    """The presented access token is malformed, forged or expired; the message says which."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    client_id: str
    scope: str
    expires_at: float  # Unix time
    jti: str


def _signer() -> signing.Signer:
    return signing.Signer(salt=ACCESS_TOKEN_SALT, sep=".")


def make_access_token(client_id: str, scope: str, *, expires_at: float) -> str:
    """Sign a token with an explicit expiry (tests use a past one to get an expired token)."""
    payload = {"cid": client_id, "scope": scope, "exp": expires_at, "jti": secrets.token_hex(8)}
    return _signer().sign_object(payload, compress=True)


def issue_access_token(client_id: str, scope: str, lifetime: int) -> str:
    return make_access_token(client_id, scope, expires_at=time.time() + lifetime)


def verify_access_token(token: str, *, now: float | None = None) -> AccessToken:
    """Return the token's claims, or raise ``InvalidTokenError``."""
    if not token or len(token) > MAX_ACCESS_TOKEN_LENGTH:
        raise InvalidTokenError("The access token is malformed.")
    try:
        payload = _signer().unsign_object(token)
    except signing.BadSignature:
        raise InvalidTokenError("The access token signature is invalid.") from None
    except ValueError:  # bad base64, zlib or JSON behind a valid signature: not ours either
        raise InvalidTokenError("The access token is malformed.") from None
    try:
        claims = AccessToken(
            client_id=str(payload["cid"]),
            scope=str(payload["scope"]),
            expires_at=float(payload["exp"]),
            jti=str(payload["jti"]),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidTokenError("The access token is malformed.") from None
    if claims.expires_at <= (time.time() if now is None else now):
        raise InvalidTokenError("The access token expired.")
    return claims


def new_refresh_token() -> tuple[str, str]:
    """Return ``(token, sha256_hex)``: hand out the token, store the hash."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

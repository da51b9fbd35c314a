"""Access tokens: obtained, persisted, cached, refreshed before expiry, and only once at a time.

Single flight. However many threads and processes find the token due at once, the token
endpoint is called once. Within a process, a lock per credential makes threads queue behind
the one refreshing; they then find the new token in the in-process cache. Across processes
(gunicorn workers, cron, other hosts on PostgreSQL) the ``Token`` row carries a lease: a
process may call the token endpoint only after a single conditional UPDATE has set
``lease_owner``/``lease_until`` on the row *and* found ``refresh_count`` unchanged since it
read the row. That statement is its own short transaction, so no database write lock is held
while the network call runs (``select_for_update`` would hold one, and is a no-op on SQLite
anyway). Others poll the row until the lease holder writes the new token and clears the
lease, or until the lease expires (a crashed holder) and one of them takes it over.

Refresh timing. A token is replaced ``TOKEN_LEEWAY`` seconds before it expires, but never
earlier than half way through its life, so short-lived tokens are still reused. After a 401
the caller passes the rejected token as ``stale``: it is replaced only if it is still the
current one, so a burst of 401s causes one refresh, not one per call.

Grants (``api_client.grants``): refresh_token when we hold one (rotated refresh tokens replace
the old one), falling back to client_credentials when the provider refuses it.

Secrets. The manager knows every secret of its credential that this process has held (the
client secret, the Basic credentials, the access and refresh tokens it obtained or read, the
current and a few previous ones): ``held_secrets()`` is what anything stored, logged or shown
must scrub, known in memory rather than read per call. At rest the tokens are encrypted by the
``Token`` model's fields (``api_client.encryption``); a stored token that no key decrypts reads
as none, so the manager simply obtains a new one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import grants
from .conf import ApiSettings
from .exceptions import (
    ApiConnectionError,
    InvalidGrantError,
    TokenEndpointError,
    TokenError,
    TokenStorageError,
)
from .messages import ApiResponse
from .models import Token, TokenState, credential_key
from .redaction import scrub

logger = logging.getLogger(__name__)

# (fields, headers) -> response; provided by the client, which owns all HTTP.
PostForm = Callable[[Mapping[str, str], Mapping[str, str]], ApiResponse]

_POLL_SECONDS = 0.05
MAX_ERROR = 500  # characters of a stored token error
# After a fresh token was refused too (401 again), 401s are handed back without a refresh
# for this long: an API that refuses every token must not cost a grant per call.
REFUSED_COOLDOWN = 60.0
REFUSES_FRESH_TOKENS = (
    "The API refuses fresh access tokens (401 right after a refresh), so pocclient stops "
    "refreshing for a minute; check the client's scope (POC_API_SCOPE) and its permissions "
    "at the provider."
)
_OWNER = f"{os.uname().nodename[:30]}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class _Cached:
    access_token: str
    refresh_due: datetime


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """What may be shown about a token: everything but the token."""

    state: str
    expires_at: datetime | None
    expires_in: int | None
    refresh_due_at: datetime | None
    obtained_at: datetime | None
    scope: str
    refresh_count: int
    last_error: str
    last_error_at: datetime | None

    @classmethod
    def of(cls, row: Token | None, leeway: int) -> TokenStatus:
        if row is None:
            return cls(TokenState.MISSING, None, None, None, None, "", 0, "", None)
        now = timezone.now()
        expires_in = int((row.expires_at - now).total_seconds()) if row.expires_at else None
        return cls(
            state=row.state(leeway, now),
            expires_at=row.expires_at,
            expires_in=max(expires_in, 0) if expires_in is not None else None,
            refresh_due_at=row.refresh_due_at(leeway),
            obtained_at=row.obtained_at,
            scope=row.scope,
            refresh_count=row.refresh_count,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
        )

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "state": str(self.state),
            "expires_at": iso(self.expires_at),
            "expires_in": self.expires_in,
            "refresh_due_at": iso(self.refresh_due_at),
            "obtained_at": iso(self.obtained_at),
            "scope": self.scope,
            "refresh_count": self.refresh_count,
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
        }


# The in-process cache, per-credential locks and known secrets are shared by every client
# in the process.
_cache: dict[str, _Cached] = {}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_KEPT_TOKENS = 8  # the current tokens and a few before them, per credential
_known: dict[str, deque[str]] = {}
_refused_until: dict[str, float] = {}  # credential key -> time.monotonic()


def clear_cache() -> None:
    """Forget cached tokens, so the next call reads the database as a new process would."""
    _cache.clear()
    _refused_until.clear()


def all_held_secrets() -> tuple[str, ...]:
    """Every token this process has held, for any credential (the debug page scrubs them)."""
    return tuple(value for known in list(_known.values()) for value in known)


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class TokenManager:
    def __init__(self, config: ApiSettings, post_form: PostForm) -> None:
        self.config = config
        self.key = credential_key(config.TOKEN_URL, config.CLIENT_ID, config.SCOPE, config.NAME)
        self._post_form = post_form
        basic = grants.basic_credentials(config).removeprefix("Basic ")
        self._credentials = tuple(value for value in (config.CLIENT_SECRET, basic) if value)
        # Long enough for the token request with its connect retries; a crashed holder's
        # lease runs out after this and another process takes over.
        self.lease_seconds = (
            (config.RETRIES + 1) * config.CONNECT_TIMEOUT + config.READ_TIMEOUT + 5.0
        )

    # --- public API --------------------------------------------------------------------------

    def get_token(self, *, stale: str | None = None, failed_since: datetime | None = None) -> str:
        """A usable access token. ``stale``: a token the API refused, to be replaced.

        A refresh that failed after ``failed_since`` (default: now) is reported rather than
        tried again: ``request_many`` passes the start of its batch.
        """
        cached = _cache.get(self.key)
        if cached and cached.access_token != stale and timezone.now() < cached.refresh_due:
            return cached.access_token
        started = failed_since or timezone.now()
        with _lock_for(self.key):
            cached = _cache.get(self.key)
            if cached and cached.access_token != stale and timezone.now() < cached.refresh_due:
                return cached.access_token
            try:
                row, _ = self._obtain(stale=stale, started=started)
            except DatabaseError as exc:
                raise TokenStorageError(
                    "The access token could not be read or stored because the database is "
                    f"busy or failing ({_first_line(exc)}); nothing was sent. Try again in a "
                    "moment."
                ) from exc
            return row.access_token

    def ensure(
        self, *, force: bool = False, if_expiring_within: float | None = None
    ) -> tuple[TokenStatus, bool]:
        """Make sure a token is stored; returns its status and whether a grant was made.

        ``force`` always refreshes; ``if_expiring_within`` refreshes only when the token
        expires within that many seconds (or is missing); otherwise a usable token is reused.
        """
        started = timezone.now()
        with _lock_for(self.key):
            row = self._row()
            stale = None
            if force:
                stale = row.access_token
            elif if_expiring_within is not None and row.expires_at is not None:
                remaining = (row.expires_at - timezone.now()).total_seconds()
                if remaining <= if_expiring_within:
                    stale = row.access_token
            row, refreshed = self._obtain(stale=stale or None, started=started)
            return TokenStatus.of(row, self.config.TOKEN_LEEWAY), refreshed

    def status(self) -> TokenStatus:
        row = Token.objects.filter(credential_key=self.key).first()
        if row is not None:
            self.learn((row.access_token, row.refresh_token))
        return TokenStatus.of(row, self.config.TOKEN_LEEWAY)

    def held_secrets(self) -> tuple[str, ...]:
        """Every secret of this credential the process holds: what anything stored, logged or
        shown must scrub. In memory; no query."""
        return (*self._credentials, *_known.get(self.key, ()))

    def refusing(self) -> bool:
        """Whether the API refused a fresh token lately (a 401 is then not worth a refresh)."""
        return _refused_until.get(self.key, 0.0) > time.monotonic()

    def refused_fresh_token(self) -> None:
        if not self.refusing():
            logger.warning(REFUSES_FRESH_TOKENS)
        _refused_until[self.key] = time.monotonic() + REFUSED_COOLDOWN

    def learn(self, values: Iterable[str]) -> None:
        """Remember token values seen (a token response, a row read) as secrets to scrub."""
        known = _known.setdefault(self.key, deque(maxlen=_KEPT_TOKENS))
        for value in values:
            if value and value not in known:
                known.append(value)

    # --- single flight -----------------------------------------------------------------------

    def _row(self) -> Token:
        try:
            row, _ = Token.objects.get_or_create(
                credential_key=self.key,
                defaults={
                    "token_url": self.config.TOKEN_URL,
                    "client_id": self.config.CLIENT_ID,
                    "connection": self.config.NAME,
                },
            )
        except IntegrityError:  # another process created it between our SELECT and INSERT
            row = Token.objects.get(credential_key=self.key)
        self.learn((row.access_token, row.refresh_token))
        return row

    def _obtain(self, *, stale: str | None, started: datetime) -> tuple[Token, bool]:
        """The stored token if usable (and not ``stale``), else a new one, single flight.

        ``started`` is when the caller began waiting: a refresh that failed after that is
        reported to it rather than tried again.
        """
        deadline = time.monotonic() + self.lease_seconds + 5.0
        while True:
            row = self._row()
            if row.access_token != stale and row.is_usable(self.config.TOKEN_LEEWAY):
                self._remember(row)
                return row, False
            if row.last_error_at and row.last_error_at >= started and not row.lease_owner:
                # Someone refreshed and failed while we waited: share their failure rather
                # than hammering a broken endpoint once per waiting thread.
                raise TokenError(row.last_error)
            owner = self._take_lease(row)
            if owner:
                return self._refresh_under_lease(row, owner), True
            if time.monotonic() > deadline:
                raise TokenError(
                    "Timed out waiting for another process to refresh the access token; "
                    "try again, and check the token endpoint if it keeps happening."
                )
            time.sleep(_POLL_SECONDS)

    def _take_lease(self, row: Token) -> str | None:
        now = timezone.now()
        owner = f"{_OWNER}:{uuid.uuid4().hex[:8]}"
        taken = (
            Token.objects.filter(pk=row.pk, refresh_count=row.refresh_count)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_owner=owner, lease_until=now + timedelta(seconds=self.lease_seconds))
        )
        return owner if taken else None

    def _refresh_under_lease(self, row: Token, owner: str) -> Token:
        try:
            grant = self._grant(row)
            self.learn((grant.access_token, grant.refresh_token))
            now = timezone.now()
            values = {
                "access_token": grant.access_token,
                "expires_at": now + timedelta(seconds=grant.expires_in),
                "obtained_at": now,
                # A refresh grant keeps the scope granted first (RFC 6749 6), and a provider
                # that does not say which it granted granted what was asked.
                "scope": grant.scope or row.scope or self.config.SCOPE,
                "refresh_token": grant.refresh_token or row.refresh_token,
                "last_error": "",
                "last_error_at": None,
                "lease_owner": "",
                "lease_until": None,
            }
        except Exception as exc:
            # Whatever failed, release the lease at once, so others need not wait for it to
            # run out, and say why in words that quote no secret.
            message = (
                exc.message
                if isinstance(exc, TokenError)
                else f"Unexpected {type(exc).__name__} while refreshing the token."
            )
            self._release(row, owner, scrub(message, self.held_secrets())[:MAX_ERROR])
            raise
        try:
            saved = Token.objects.filter(pk=row.pk, lease_owner=owner).update(
                refresh_count=F("refresh_count") + 1, **values
            )
        except DatabaseError as exc:
            # The token is good, and a refresh token it replaces may be spent already: use it
            # here. The stored row keeps the old token and our lease, which runs out by
            # itself; then another process refreshes.
            logger.warning(
                "The new access token could not be stored (%s); this process uses it, and "
                "other processes refresh once the lease runs out.",
                _first_line(exc),
            )
        else:
            if not saved:
                logger.warning(
                    "Token lease expired during the refresh; this token is not persisted."
                )
        for name, value in values.items():
            setattr(row, name, value)
        row.refresh_count += 1
        self._remember(row)
        logger.info(
            "Obtained an access token for %s, valid until %s",
            self.config.CLIENT_ID,
            row.expires_at.isoformat(),
        )
        return row

    def _release(self, row: Token, owner: str, error: str) -> None:
        try:
            Token.objects.filter(pk=row.pk, lease_owner=owner).update(
                lease_owner="", lease_until=None, last_error=error, last_error_at=timezone.now()
            )
        except DatabaseError:  # the grant's failure is the news; the lease runs out
            logger.warning("Could not release the token lease", exc_info=True)
        _cache.pop(self.key, None)

    def _remember(self, row: Token) -> None:
        self.learn((row.access_token, row.refresh_token))
        due = row.refresh_due_at(self.config.TOKEN_LEEWAY)
        if due is not None:
            _cache[self.key] = _Cached(row.access_token, due)

    # --- the grants --------------------------------------------------------------------------

    def _grant(self, row: Token) -> grants.Grant:
        if row.refresh_token:
            try:
                return self._request(grants.refresh(row.refresh_token))
            except InvalidGrantError:
                logger.info("The refresh token was refused; falling back to client credentials.")
        return self._request(grants.client_credentials(self.config))

    @sensitive_variables("fields", "headers")
    def _request(self, fields: dict[str, str]) -> grants.Grant:
        fields, headers = grants.authenticated(self.config, fields)
        try:
            response = self._post_form(fields, headers)
        except ApiConnectionError as exc:
            raise TokenEndpointError(
                f"Could not reach the token endpoint {self.config.TOKEN_URL}: {exc.message}",
                exchange_id=exc.exchange_id,
            ) from exc
        return grants.read_answer(response, self.config, self.held_secrets())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

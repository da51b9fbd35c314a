"""Connections by name: their settings, and who may send with them or read their log.

``settings_for(name)`` is what ``get_client(name)`` builds a client from: ``default`` is the
environment (``api_settings()``); any other is its ``Connection`` row, read again at most every
``RECHECK_SECONDS`` in each process (at once in the process that saved it), so an edit in the
admin reaches every worker within seconds without a query per call.

Rights (``may_send``, ``may_read``, ``readable``): a superuser may do everything. Anyone else
needs the permission (``api_client.send_request``, ``api_client.view_exchange``) and, on a
connection that names groups, to be in one of them; a connection that names none is open to
the permission's holders only if it is ``default`` (today's rule, so an install with only the
environment's connection works as before); any other is then for superusers only, so that a
new production connection is never open to every sender by omission. Reading falls back to
the send groups when no read groups are named.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .conf import ApiSettings, api_settings
from .exceptions import InvalidRequestError
from .grants import basic_credentials
from .models.connections import DEFAULT, TUNABLES, Connection, UndecryptableSecret
from .permissions import SEND, VIEW

RECHECK_SECONDS = 5.0


def field_label(setting: str) -> str:
    """How a problem names a connection row's field: as the admin's form does."""
    return str(Connection._meta.get_field(setting.lower()).verbose_name)


class UnknownConnectionError(InvalidRequestError):
    """No connection of that name can be used: none exists, it is switched off, or its
    settings (or its secret) are unusable. The message names it and says what to do."""

    error_code = "unknown_connection"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="connection")


def settings_of(row: Connection) -> ApiSettings:
    """The settings a connection's row stands for (``default``: the environment's)."""
    if row.is_default:
        return api_settings()
    values: dict[str, Any] = {
        "BASE_URL": row.base_url,
        "TOKEN_URL": row.token_url,
        "CLIENT_ID": row.client_id,
        "CLIENT_SECRET": str(row.client_secret),
        "SCOPE": row.scope,
        "CLIENT_AUTH": row.client_auth,
        "RATE_LIMIT": row.rate_limit,
    }
    for field, setting in TUNABLES.items():
        if (value := getattr(row, field)) is not None:
            values[setting] = value
    return ApiSettings(NAME=row.name, **values)


def row_problems(row: Connection) -> list[str]:
    """What keeps ``row`` from being used, as sentences (the admin's form shows them)."""
    if row.is_default:
        return []
    return settings_of(row).problems(label=field_label)


@dataclass(frozen=True, slots=True)
class _Seen:
    config: ApiSettings | None
    at: float
    refusal: str = ""  # why the connection cannot be used (then config is None)


_seen: dict[str, _Seen] = {}
_seen_guard = threading.Lock()


def settings_for(name: str = DEFAULT) -> ApiSettings:
    """The settings of the connection ``name``; ``UnknownConnectionError`` when it cannot be
    used. The same object while the row is unchanged (``get_client`` keeps its client)."""
    if name == DEFAULT:
        return api_settings()
    now = time.monotonic()
    seen = _seen.get(name)
    if seen is not None and now - seen.at < RECHECK_SECONDS:
        if seen.config is None:  # refused a moment ago: not read again for every use
            raise UnknownConnectionError(seen.refusal)
        return seen.config
    config, refusal = _checked(name, Connection.objects.filter(name=name).first())
    if config is None:
        with _seen_guard:
            _seen[name] = _Seen(None, now, refusal)
        raise UnknownConnectionError(refusal)
    if seen is not None and seen.config == config:
        config = seen.config
    with _seen_guard:
        _seen[name] = _Seen(config, now)
        if config.CLIENT_SECRET:
            _secrets.add(config.CLIENT_SECRET)
            _secrets.add(basic_credentials(config).removeprefix("Basic "))
    return config


def _checked(name: str, row: Connection | None) -> tuple[ApiSettings | None, str]:
    """The settings of the connection ``name`` (its ``row``), or None and why it cannot be
    used."""
    if row is None:
        return None, (
            f"There is no connection named {name!r}; add it in the admin or with "
            "`manage.py add_connection`."
        )
    if not row.enabled:
        return None, f"The connection {name!r} is switched off."
    if isinstance(row.client_secret, UndecryptableSecret):
        return None, (
            f"The client secret of the connection {name!r} cannot be decrypted with any key of "
            "POC_ENCRYPTION_KEY (a wrong or missing key); add the old key, or set the secret "
            "again in the admin or with `manage.py add_connection --update`."
        )
    config = settings_of(row)
    if problems := config.problems(label=field_label):
        return None, f"The connection {name!r} is not usable: {' '.join(problems)}"
    return config, ""


_secrets: set[str] = set()  # every client secret this process has read (never forgotten)


def known_client_secrets() -> tuple[str, ...]:
    """The client secrets (and their Basic credentials) of every connection this process
    has used: Django's error pages scrub them (``api_client.reporting``)."""
    with _seen_guard:
        return tuple(_secrets)


def forget(name: str | None = None) -> None:
    """Read ``name`` (every connection, when ``None``), and everyone's rights, from the
    database at their next use."""
    _groups.clear()
    with _seen_guard:
        if name is None:
            _seen.clear()
        else:
            _seen.pop(name, None)


@receiver([post_save, post_delete], sender=Connection)
def _forget_saved(*, instance: Connection, **kwargs: Any) -> None:
    forget(instance.name)


@receiver(post_delete, sender=Group)
@receiver(m2m_changed, sender=Connection.send_groups.through)
@receiver(m2m_changed, sender=Connection.read_groups.through)
def _forget_groups(**kwargs: Any) -> None:
    _groups.clear()


# --- rights ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rights:
    send: frozenset[str]
    read: frozenset[str]
    everything: bool = False


def rights(user: Any) -> Rights:
    """What ``user`` may do on which connection (cached on the user object, which lives for
    one request)."""
    cached = getattr(user, "_poc_connection_rights", None)
    if cached is not None:
        return cached
    if not user.is_active:
        found = Rights(frozenset(), frozenset())
    elif user.is_superuser:
        found = Rights(frozenset(), frozenset(), everything=True)
    else:
        found = _rights(user)
    user._poc_connection_rights = found
    return found


@dataclass(frozen=True, slots=True)
class _Groups:
    """Each connection's send and read groups (ids), as last read."""

    senders: dict[str, frozenset[int]]
    readers: dict[str, frozenset[int]]
    at: float

    @property
    def named(self) -> bool:
        return any(self.senders.values()) or any(self.readers.values())


_groups: list[_Groups] = []  # the one cached value, replaced whole


def _connection_groups() -> _Groups:
    """Read at most every ``RECHECK_SECONDS`` per process (at once after a change here),
    not once per request."""
    now = time.monotonic()
    if _groups and now - _groups[0].at < RECHECK_SECONDS:
        return _groups[0]
    senders: dict[str, set[int]] = {}
    readers: dict[str, set[int]] = {}
    # One query; its rows are each connection's send x read groups (a few).
    for name, sender, reader in Connection.objects.values_list(
        "name", "send_groups", "read_groups"
    ):
        senders.setdefault(name, set()).update([sender] if sender else [])
        readers.setdefault(name, set()).update([reader] if reader else [])
    value = _Groups(
        {name: frozenset(ids) for name, ids in senders.items()},
        {name: frozenset(ids) for name, ids in readers.items()},
        now,
    )
    _groups[:] = [value]
    return value


def _rights(user: Any) -> Rights:
    can_send, can_view = user.has_perm(SEND), user.has_perm(VIEW)
    if not (can_send or can_view):
        return Rights(frozenset(), frozenset())
    groups = _connection_groups()
    # No connection names a group (the usual single-API install): no need to ask whose.
    mine = set(user.groups.values_list("pk", flat=True)) if groups.named else set()
    send: set[str] = set()
    read: set[str] = set()
    for name in groups.senders.keys() | {DEFAULT}:
        senders = groups.senders.get(name, frozenset())
        readers = groups.readers.get(name, frozenset()) or senders
        open_ = name == DEFAULT
        if can_send and (mine & senders if senders else open_):
            send.add(name)
        if can_view and (mine & readers if readers else open_):
            read.add(name)
    return Rights(frozenset(send), frozenset(read))


def may_send(user: Any, name: str) -> bool:
    found = rights(user)
    return found.everything or name in found.send


def may_read(user: Any, name: str) -> bool:
    found = rights(user)
    return found.everything or name in found.read


def readable(user: Any) -> frozenset[str] | None:
    """The connections whose log ``user`` may read; ``None`` for all of them."""
    found = rights(user)
    return None if found.everything else found.read


def reads_every_connection(user: Any) -> bool:
    """Whether ``user`` may read every connection's log (what spans them all, such as the
    admin's summary, needs it)."""
    names = readable(user)
    if names is None:
        return True
    return set(_connection_groups().senders) | {DEFAULT} <= names


def offered(user: Any) -> list[dict[str, Any]]:
    """The connections the console offers ``user``: enabled, and usable by them."""
    found = rights(user)
    rows = {row.name: row for row in Connection.objects.filter(enabled=True)}
    rows.setdefault(DEFAULT, Connection(name=DEFAULT))
    listed = []
    for name in sorted(rows, key=lambda n: (n != DEFAULT, n)):
        can_send = found.everything or name in found.send
        can_read = found.everything or name in found.read
        if not (can_send or can_read):
            continue
        row = rows[name]
        config = settings_of(row)
        listed.append(
            {
                "name": name,
                "base_url": config.base_url,
                "max_workers": config.MAX_WORKERS,
                "batch_max": config.BATCH_MAX,
                "colour": row.colour,
                "protected": row.protected,
                "can_send": can_send,
                "can_read": can_read,
            }
        )
    return listed

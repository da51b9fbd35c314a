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

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .conf import ApiSettings, api_settings
from .exceptions import InvalidRequestError
from .models.connections import DEFAULT, TUNABLES, Connection, UndecryptableSecret
from .permissions import SEND, VIEW

RECHECK_SECONDS = 5.0


def field_label(setting: str) -> str:
    """How a problem names a connection row's field: as the model does."""
    return setting.lower()


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
    config: ApiSettings
    at: float


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
        return seen.config
    row = Connection.objects.filter(name=name).first()
    if row is None:
        raise UnknownConnectionError(
            f"There is no connection named {name!r}; add it in the admin or with "
            "`manage.py add_connection`."
        )
    if not row.enabled:
        raise UnknownConnectionError(f"The connection {name!r} is switched off.")
    if isinstance(row.client_secret, UndecryptableSecret):
        raise UnknownConnectionError(
            f"The client secret of the connection {name!r} cannot be decrypted with any key of "
            "POC_ENCRYPTION_KEY (a wrong or missing key); add the old key, or set the secret "
            "again in the admin or with `manage.py add_connection --update`."
        )
    config = settings_of(row)
    if problems := config.problems(label=field_label):
        raise UnknownConnectionError(f"The connection {name!r} is not usable: {' '.join(problems)}")
    if seen is not None and seen.config == config:
        config = seen.config
    with _seen_guard:
        _seen[name] = _Seen(config, now)
    return config


def forget(name: str | None = None) -> None:
    """Read ``name`` (every connection, when ``None``) from the database at its next use."""
    with _seen_guard:
        if name is None:
            _seen.clear()
        else:
            _seen.pop(name, None)


@receiver([post_save, post_delete], sender=Connection)
def _forget_saved(*, instance: Connection, **kwargs: Any) -> None:
    forget(instance.name)


# --- rights ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rights:
    send: frozenset[str]
    read: frozenset[str]
    everything: bool = False


def _group_ids(user: Any) -> set[int]:
    return set(user.groups.values_list("pk", flat=True))


def rights(user: Any) -> Rights:
    """What ``user`` may do on which connection, from two queries (cached on the user object,
    which lives for one request)."""
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


def _rights(user: Any) -> Rights:
    can_send, can_view = user.has_perm(SEND), user.has_perm(VIEW)
    if not (can_send or can_view):
        return Rights(frozenset(), frozenset())
    mine = _group_ids(user)
    send: set[str] = set()
    read: set[str] = set()
    rows = Connection.objects.prefetch_related("send_groups", "read_groups")
    named = False
    for row in rows:
        named |= row.is_default
        senders = {group.pk for group in row.send_groups.all()}
        readers = {group.pk for group in row.read_groups.all()} or senders
        open_ = row.is_default
        if can_send and (mine & senders if senders else open_):
            send.add(row.name)
        if can_view and (mine & readers if readers else open_):
            read.add(row.name)
    if not named:  # no row for default (a database flushed by a test): today's rule
        if can_send:
            send.add(DEFAULT)
        if can_view:
            read.add(DEFAULT)
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

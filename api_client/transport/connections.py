"""Connections and pools whose sockets the call's deadline can cut (``api_client.deadline``)."""

from __future__ import annotations

from typing import Any

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError

from ..deadline import Deadline, unwatch, watch
from ..deadline import current as deadline_now


class _WatchedConnection:
    """A connection whose socket the call's deadline can cut (``api_client.deadline``).

    ``connect`` covers a new connection (and cannot be cut while it connects, so its timeout
    is cut to what is left), ``request`` one taken from the pool; the pool forgets the
    watch when the connection comes back (``_WatchedPool._put_conn``).
    """

    watched: Deadline | None = None

    def connect(self) -> None:
        current = deadline_now()
        if current is not None:
            remaining = current.remaining()
            if remaining <= 0:
                raise ConnectTimeoutError(self, "The call's deadline passed before connecting.")
            if self.timeout is None or self.timeout > remaining:  # type: ignore[has-type]
                self.timeout = remaining
        super().connect()  # type: ignore[misc]
        self.watched = watch(self, self.sock)  # type: ignore[attr-defined]

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # type: ignore[attr-defined]
            self.watched = watch(self, self.sock)  # type: ignore[attr-defined]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool:
    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            unwatch(conn, conn.watched)
            conn.watched = None
        super()._put_conn(conn)  # type: ignore[misc]


class HTTPPool(_WatchedPool, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class HTTPSPool(_WatchedPool, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection

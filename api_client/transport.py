"""Sending: the only module that speaks HTTP (urllib3), and the one retry policy.

``Transport.send`` sends one request through a pool of keep-alive connections and returns a
``Reply`` with the status, headers, body and the number of attempts it took; a network
failure raises ``ApiConnectionError`` or ``ApiTimeoutError`` (with ``attempts`` set).

urllib3 directly, not requests: requests fixes the retry policy per adapter, so the attempts
of one call could only be counted in a thread-local, and it adds cookies, proxies and
``.netrc`` handling that a client of one API must switch off anyway.

Retries. Connection failures are retried for every method (nothing reached the server);
429/502/503/504 and read errors only for idempotent methods, so a POST is never sent twice.
``Retry-After`` is honoured up to ``RETRY_AFTER_MAX`` seconds. Redirects are not followed:
they could lead outside the base URL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from urllib3 import PoolManager, Timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util import make_headers
from urllib3.util.retry import Retry

from .conf import ApiSettings
from .exceptions import ApiConnectionError, ApiTimeoutError
from .messages import Reply
from .redaction import redact_url

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "pocclient/0.1"
# What every call sends besides its own headers (``Accept`` and the rest are the client's).
DEFAULT_HEADERS = {
    "User-Agent": USER_AGENT,
    **make_headers(accept_encoding=True),
    "Connection": "keep-alive",
}


class _Retry(Retry):
    """urllib3's Retry, counting the attempts of one call in ``tally`` and logging retries.

    A fresh tally is given to each call (``for_call``); ``new()``, which urllib3 calls on
    every increment, passes it on.
    """

    tally: list[str]

    def new(self, **kw: Any) -> _Retry:
        retry = super().new(**kw)
        retry.tally = self.tally
        return retry

    def for_call(self) -> _Retry:
        retry = self.new()
        retry.tally = []
        return retry

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs):
        new = super().increment(method, url, response, error, *args, **kwargs)
        cause = f"status {response.status}" if response is not None else type(error).__name__
        self.tally.append(cause)
        logger.warning(
            "Retrying %s %s after %s (attempt %d)",
            method,
            redact_url(url or ""),
            cause,
            len(self.tally) + 1,
        )
        return new


def _retry_policy(config: ApiSettings) -> _Retry:
    retry = _Retry(
        total=config.RETRIES,
        connect=config.RETRIES,
        read=min(config.RETRIES, 1),
        status=config.RETRIES,
        other=0,
        redirect=False,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        backoff_factor=config.BACKOFF_FACTOR,
        backoff_jitter=config.BACKOFF_FACTOR / 2,
        respect_retry_after_header=True,
        retry_after_max=config.RETRY_AFTER_MAX,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.tally = []
    return retry


class Transport:
    """Keep-alive connections to the API and its token endpoint; thread-safe."""

    def __init__(self, config: ApiSettings) -> None:
        self.config = config
        self._retry = _retry_policy(config)
        self._timeout = Timeout(connect=config.CONNECT_TIMEOUT, read=config.READ_TIMEOUT)
        # One pool per host (API and token endpoint), each as large as the worker pool so
        # concurrent calls reuse connections instead of opening and discarding them.
        self._pools = PoolManager(num_pools=4, maxsize=config.MAX_WORKERS)

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Reply:
        """Send one request (with its retries); ``headers`` are sent as they are."""
        retry = self._retry.for_call()
        try:
            response = self._pools.urlopen(
                method,
                url,
                body=body,
                headers=dict(headers),
                retries=retry,
                redirect=False,
                timeout=self._timeout,
                preload_content=False,
                decode_content=True,
            )
            try:
                content = response.read()
            finally:
                response.release_conn()
        except HTTPError as exc:
            error = network_error(exc, url, self.config)
            error.attempts = len(retry.tally) + 1
            raise error from exc
        return Reply(response.status, dict(response.headers), content, len(retry.tally) + 1)

    def close(self) -> None:
        """Close the pooled connections now. ``PoolManager.clear()`` only forgets its pools,
        leaving each socket to the garbage collector, which keeps it open for as long as
        anything (a logged traceback, say) still refers to a response."""
        pools = self._pools.pools
        for key in pools.keys():  # noqa: SIM118 (the container cannot be iterated)
            pool = pools.get(key)
            if pool is not None:
                pool.close()
        self._pools.clear()


def network_error(exc: BaseException, url: str, config: ApiSettings) -> ApiConnectionError:
    """Our error for a urllib3 failure, saying what happened in words a person can act on."""
    host = urlsplit(url).netloc
    chain = _cause_chain(exc)
    if any(
        isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError) for e in chain
    ):
        return ApiTimeoutError(
            f"Connecting to {host} timed out after {config.CONNECT_TIMEOUT:g} s "
            "(POC_API_CONNECT_TIMEOUT)."
        )
    if any(isinstance(e, ReadTimeoutError | TimeoutError) for e in chain):
        return ApiTimeoutError(
            f"{host} did not answer within {config.READ_TIMEOUT:g} s (POC_API_READ_TIMEOUT)."
        )
    if any(isinstance(e, ProtocolError) for e in chain):
        # The connection was open and broke mid-exchange: the request may have arrived.
        return ApiConnectionError(
            f"The connection to {host} broke before an answer came "
            f"({_describe(chain[-1])}); the API may have received the request."
        )
    return ApiConnectionError(f"Could not connect to {host}: {_describe(chain[-1])}.")


def _cause_chain(exc: BaseException) -> list[BaseException]:
    """The exception and the reasons wrapped inside it, outermost first."""
    chain = [exc]
    while len(chain) < 10:
        current = chain[-1]
        inner = getattr(current, "reason", None) or (current.args[0] if current.args else None)
        if not isinstance(inner, BaseException):
            inner = current.__cause__ or current.__context__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _describe(cause: BaseException) -> str:
    text = str(cause)
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text:
        return "Connection refused"
    if isinstance(cause, ConnectionResetError) or "Connection reset" in text:
        return "Connection reset by peer"
    if "RemoteDisconnected" in text or "closed connection without response" in text:
        return "the server closed the connection without answering"
    if "Name or service not known" in text or "getaddrinfo failed" in text:
        return "the host name could not be resolved"
    return text[:200] or type(cause).__name__

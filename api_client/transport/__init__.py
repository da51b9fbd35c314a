"""Sending: the only package that speaks HTTP (urllib3), with the one retry policy.

``Transport.send`` sends one request through a pool of keep-alive connections and returns a
``Reply`` with the status, headers, body and the number of attempts it took; a failure raises
one of our errors (``ApiConnectionError``, ``ApiTimeoutError``, ``ResponseTooLargeError``,
``RetryLaterError``) with ``attempts`` and, where the API answered, the ``reply`` so far.

The API is untrusted, so every call is bounded:
- in time: the whole call, retries and ``Retry-After`` waits included, ends by its deadline
  (``DEADLINE``; ``api_client.deadline`` cuts the sockets of a call that drips);
- in memory: the body is read in chunks, decoded, up to ``MAX_RESPONSE_BYTES``; past that the
  connection is closed and only the first part is kept (urllib3 2.8 bounds each decoded chunk,
  gzip in gzip included);
- in number: at most ``MAX_WORKERS`` calls are in flight in the process (``pool.IN_FLIGHT``),
  and each pool holds as many connections, so no connection is opened and thrown away.

urllib3 directly, not requests: requests fixes the retry policy per adapter, so the attempts
of one call could only be counted in a thread-local; it reads the body of any redirect whole
(a bomb in a 302), and adds cookies, proxies and ``.netrc`` handling that a client of one API
must switch off anyway.

Retries (``retries.RetryPolicy``). Connection failures are retried for every method (nothing
reached the server); 429/502/503/504 and read errors only for idempotent methods, so a POST
is never sent twice. A ``Retry-After`` up to ``RETRY_AFTER_MAX`` seconds (and within the
deadline) is waited for; a longer one ends the call at once with ``RetryLaterError``, which
says when to try again. Redirects are not followed: they could lead outside the base URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, PoolManager, Timeout
from urllib3.exceptions import HTTPError
from urllib3.util import make_headers

from ..conf import ApiSettings
from ..deadline import Deadline, deadline
from ..exceptions import ApiTimeoutError, ResponseTooLargeError, RetryLaterError
from ..messages import Reply
from ..pool import IN_FLIGHT
from .connections import HTTPPool, HTTPSPool
from .errors import deadline_error, network_error
from .retries import RETRY_STATUSES, retry_policy

__all__ = ["DEFAULT_HEADERS", "RETRY_STATUSES", "USER_AGENT", "Transport", "network_error"]

USER_AGENT = "pocclient/0.1"
# What every call sends besides its own headers (``Accept`` and the rest are the client's).
DEFAULT_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": make_headers(accept_encoding=True)["accept-encoding"],
    "Connection": "keep-alive",
}
_CHUNK = 64 * 1024


class Transport:
    """Keep-alive connections to the API and its token endpoint; thread-safe."""

    def __init__(self, config: ApiSettings) -> None:
        self.config = config
        self._retry = retry_policy(config)
        self._timeout = Timeout(connect=config.CONNECT_TIMEOUT, read=config.READ_TIMEOUT)
        # One pool per host (API and token endpoint), each as large as the bound on calls in
        # flight, so that concurrent calls reuse connections and never open extra ones.
        self._pools = PoolManager(num_pools=4, maxsize=config.MAX_WORKERS)
        self._pools.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}
        self._by_origin: dict[str, HTTPConnectionPool] = {}

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Reply:
        """Send one request (with its retries); ``headers`` are sent as they are.

        The whole exchange, retries and waits included, ends by the deadline
        (``DEADLINE`` seconds, or less when the caller's deadline leaves less), and at most
        ``MAX_RESPONSE_BYTES`` of body (after decompression) are read.
        """
        with deadline(self.config.DEADLINE) as current:
            if not IN_FLIGHT.enter(self.config.MAX_WORKERS, current.remaining()):
                raise ApiTimeoutError(
                    f"{self.config.MAX_WORKERS} calls were in flight in this process until the "
                    f"deadline of {current.seconds:g} s passed "
                    f"({self.config.named('MAX_WORKERS', 'DEADLINE')}); nothing was sent."
                )
            try:
                return self._send(method, url, headers, body, current)
            finally:
                IN_FLIGHT.leave()

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        current: Deadline,
    ) -> Reply:
        retry = self._retry.for_call(current)
        state = retry.state
        origin, target = _split(url)
        response = None
        try:
            response = self._pool(origin).urlopen(
                method,
                target,
                body=body,
                headers=dict(headers),
                retries=retry,
                redirect=False,
                assert_same_host=False,
                timeout=self._timeout,
                preload_content=False,
                decode_content=True,
            )
            reply = Reply(response.status, dict(response.headers), b"", state.attempts)
            reply.content = self._read(response, reply)
        except (HTTPError, OSError) as exc:
            error = network_error(exc, url, self.config, current)
            error.attempts = state.attempts
            raise error from exc
        finally:
            if response is not None:
                response.release_conn()
        if current.fired:  # the watchdog cut the answer: what came is not the whole of it
            error = deadline_error(url, current, self.config)
            error.attempts, error.reply = state.attempts, reply
            raise error
        if state.retry_later is not None:
            host = urlsplit(url).netloc
            error = RetryLaterError(
                f"{host} answered {reply.status} and asked to be called again in "
                f"{state.retry_later:g} s, longer than this call may wait "
                f"({self.config.named('RETRY_AFTER_MAX', 'DEADLINE')}); retry after that.",
                retry_after=state.retry_later,
                status=reply.status,
            )
            error.attempts, error.reply = state.attempts, reply
            raise error
        return reply

    def _read(self, response: BaseHTTPResponse, reply: Reply) -> bytes:
        """The body, decoded, read in chunks up to ``MAX_RESPONSE_BYTES``: past that, the
        connection is closed and ``ResponseTooLargeError`` keeps the first part of it."""
        limit = self.config.MAX_RESPONSE_BYTES
        keep = min(limit, max(self.config.LOG_BODY_LIMIT, _CHUNK))
        length = response.headers.get("Content-Length", "")
        declared = (
            int(length) if length.isascii() and length.isdigit() and len(length) < 19 else None
        )
        # A plain body that says it is too long is refused after its first part.
        enough = keep if declared is not None and declared > limit else limit
        # A list, not a growing bytearray: no copy of everything read so far each time it
        # grows, so a body costs its own size and no more until it is joined.
        chunks: list[bytes] = []
        size = 0
        for chunk in response.stream(_CHUNK, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > enough:
                response.close()  # the rest is never read; the connection is not reused
                reply.content = _first(chunks, keep)
                del chunks
                error = ResponseTooLargeError(
                    f"The API's answer is larger than {limit} bytes"
                    f"{' after decompression' if response.headers.get('Content-Encoding') else ''}"
                    f" ({self.config.named('MAX_RESPONSE_BYTES')}); it was not read past that, "
                    "and the exchange "
                    "keeps its first part.",
                    status=reply.status,
                )
                error.reply = reply
                raise error
        return b"".join(chunks)

    def _pool(self, origin: str) -> HTTPConnectionPool:
        # PoolManager.urlopen parses the URL and looks its pool up on every call; a client
        # talks to two origins, so remember them.
        pool = self._by_origin.get(origin)
        if pool is None:
            pool = self._by_origin[origin] = self._pools.connection_from_url(origin)
        return pool

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
        self._by_origin.clear()


def _first(chunks: list[bytes], size: int) -> bytes:
    """The first ``size`` bytes of ``chunks``, copying no more than that."""
    first, taken = [], 0
    for chunk in chunks:
        if taken >= size:
            break
        first.append(chunk[: size - taken])
        taken += len(first[-1])
    return b"".join(first)


def _split(url: str) -> tuple[str, str]:
    """``("http://host:port", "/path?query")``: the pool to use and the request target."""
    scheme, _, rest = url.partition("://")
    host, slash, target = rest.partition("/")
    return f"{scheme}://{host}", slash + target

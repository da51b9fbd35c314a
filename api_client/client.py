"""The only code that speaks HTTP to the external API.

``ApiClient.request`` validates its input (``api_client.validation``), attaches a bearer token
(``api_client.tokens``), sends through one pooled ``requests.Session`` whose adapter retries
idempotent calls with urllib3's ``Retry``, retries once with a fresh token after a 401, and
records the call as one ``Exchange``. ``request_many`` fans calls out over a bounded pool of
threads that manage their own database connections (``api_client.pool``), and hands their
exchanges to a writer thread that commits many per transaction (``api_client.recording``).

Retries. Connection failures are retried for every method (nothing reached the server);
429/502/503/504 and read errors only for idempotent methods, so a POST is never sent twice.
``Retry-After`` is honoured up to ``RETRY_AFTER_MAX`` seconds. Redirects are not followed:
they could lead outside the base URL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import requests
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from .conf import ApiSettings, api_settings
from .context import REQUEST_ID_HEADER, get_request_id
from .exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    HTTPStatusError,
    InvalidRequestError,
    TokenError,
)
from .models import Exchange
from .pool import iter_in_threads
from .recording import ExchangeWriter, store
from .redaction import redact_body, redact_headers, redact_url, scrub, truncate
from .tokens import TokenManager
from .validation import (
    BODYLESS_METHODS,
    clean_headers,
    clean_method,
    clean_query,
    confine_path,
    encode_json,
)

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "pocclient/0.1"
_FORM = "application/x-www-form-urlencoded"
_attempts = threading.local()


class _CountingRetry(Retry):
    """urllib3's Retry, also counting the attempts of the current call (per thread)."""

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs):
        new = super().increment(method, url, response, error, *args, **kwargs)
        _attempts.count = getattr(_attempts, "count", 1) + 1
        cause = f"status {response.status}" if response is not None else type(error).__name__
        logger.warning("Retrying %s %s after %s (attempt %d)", method, url, cause, _attempts.count)
        return new


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One call to make, as accepted by ``request_many`` (dicts with these keys work too)."""

    method: str
    path: str
    query: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    json: Any = None

    FIELDS: ClassVar[frozenset[str]] = frozenset({"method", "path", "query", "headers", "json"})

    @classmethod
    def coerce(cls, value: ApiRequest | Mapping[str, Any]) -> ApiRequest:
        if isinstance(value, ApiRequest):
            return value
        if not isinstance(value, Mapping):
            raise InvalidRequestError("Each request must be an object.", field="requests")
        unknown = set(value) - cls.FIELDS
        if unknown:
            raise InvalidRequestError(
                f"Unknown request field(s): {', '.join(sorted(map(str, unknown)))}; "
                f"use {', '.join(sorted(cls.FIELDS))}.",
                field="requests",
            )
        return cls(
            method=value.get("method", "GET"),
            path=value.get("path", ""),
            query=value.get("query"),
            headers=value.get("headers"),
            json=value.get("json"),
        )


@dataclass(slots=True)
class ApiResponse:
    method: str
    url: str
    path: str
    status: int
    headers: dict[str, str]
    content: bytes
    duration_ms: float
    attempts: int
    request_id: str = ""
    exchange_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")

    def json(self) -> Any:
        """The decoded JSON body; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.content)

    def data(self) -> Any:
        """The body as JSON when it is JSON, else as text (None when empty)."""
        if not self.content:
            return None
        try:
            return self.json()
        except ValueError:
            return self.text

    def raise_for_status(self) -> ApiResponse:
        if self.status >= 400:
            error_class = HTTPStatusError.for_status(self.status)
            raise error_class(
                f"{self.method} {self.path} answered {self.status}.",
                status=self.status,
                body=self.text,
                request_id=self.request_id,
                exchange_id=self.exchange_id,
            )
        return self


@dataclass(slots=True)
class BatchResult:
    """The outcome of one item of ``request_many``: a response or an error, never both."""

    index: int
    request: ApiRequest | Mapping[str, Any]
    response: ApiResponse | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None and self.response.ok

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def exchange_id(self) -> int | None:
        if self.response:
            return self.response.exchange_id
        return getattr(self.error, "exchange_id", None)

    @property
    def duration_ms(self) -> float | None:
        return self.response.duration_ms if self.response else None


def _build_session(config: ApiSettings) -> requests.Session:
    session = requests.Session()
    # No proxies or .netrc from the environment (a .netrc could even add credentials), and
    # no cookies: every call is authenticated by its bearer token alone.
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.headers["User-Agent"] = USER_AGENT
    retry = _CountingRetry(
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
    # One pool per host (API and token endpoint), each as large as the worker pool so
    # concurrent calls reuse connections instead of opening and discarding them.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=config.MAX_WORKERS, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ApiClient:
    """A client for the configured API. Thread-safe; share one per process (``get_client``)."""

    def __init__(self, config: ApiSettings | None = None) -> None:
        self.config = config or api_settings()
        self.session = _build_session(self.config)
        self.tokens = TokenManager(self.config, self._post_token_form)
        self._timeout = (self.config.CONNECT_TIMEOUT, self.config.READ_TIMEOUT)

    def close(self) -> None:
        """Close the pooled connections now. ``Session.close()`` only forgets them: urllib3 2
        leaves each socket to the garbage collector, which keeps it open for as long as
        anything (a logged traceback, say) still refers to a response."""
        for adapter in self.session.adapters.values():
            pools = adapter.poolmanager.pools
            for key in pools.keys():  # noqa: SIM118 (the container cannot be iterated)
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
        self.session.close()

    # --- one call ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        batch_id: str = "",
    ) -> ApiResponse:
        """Send one call and record it. Returns the response whatever its status.

        Raises ``InvalidRequestError`` before sending anything when the input is bad,
        ``TokenError`` when no token can be had, ``ApiConnectionError``/``ApiTimeoutError``
        when the API cannot be reached. Call ``raise_for_status()`` on the result to turn a
        status of 400 or more into an ``HTTPStatusError``.
        """
        return self._request(
            method, path, query=query, headers=headers, json=json, batch_id=batch_id
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        batch_id: str,
        token_failures_since: datetime | None = None,
        writer: ExchangeWriter | None = None,
    ) -> ApiResponse:
        """``request``; ``token_failures_since`` is passed on to ``TokenManager.get_token``,
        and a batch's ``writer`` stores the exchange (the id is then a future until
        ``_run_many`` settles it)."""
        method, url, path, extra_headers, body = self._prepare(method, path, query, headers, json)
        request_id = get_request_id()
        send_headers = {"Accept": "application/json", **extra_headers}
        if body is not None:
            send_headers.setdefault("Content-Type", "application/json")
        if request_id:
            send_headers[REQUEST_ID_HEADER] = request_id

        token = None
        started = time.perf_counter()
        attempts = 0  # stays 0 when the call is never sent (no token)
        response: requests.Response | None = None
        error: ApiError | None = None
        try:
            token = self.tokens.get_token(failed_since=token_failures_since)
            started = time.perf_counter()  # the call's own time, not the wait for a token
            response, attempts = self._send(method, url, send_headers, body, token)
            if response.status_code == 401:
                # Exactly one refresh and one retry: the token may have been revoked early.
                token = self.tokens.get_token(stale=token)
                response, more = self._send(method, url, send_headers, body, token)
                attempts += more
        except TokenError as exc:
            error = exc
        except requests.RequestException as exc:
            attempts += getattr(_attempts, "count", 1)
            error = _network_error(exc, url, self._timeout)
        duration_ms = (time.perf_counter() - started) * 1000

        result = None
        if response is not None:
            result = ApiResponse(
                method=method,
                url=url,
                path=path,
                status=response.status_code,
                headers=dict(response.headers),
                content=response.content,
                duration_ms=duration_ms,
                attempts=attempts,
                request_id=request_id,
            )
        exchange_id = self._record(
            kind=Exchange.Kind.API,
            method=method,
            url=url,
            path=path,
            headers={
                **self.session.headers,
                **send_headers,
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
            body=body,
            response=result,
            duration_ms=duration_ms,
            attempts=attempts,
            error=error,
            secrets=(token or "",),
            batch_id=batch_id,
            writer=writer,
        )
        if error is not None:
            error.exchange_id, error.request_id = exchange_id, request_id
            raise error
        assert result is not None  # noqa: S101 (no error means a response)
        result.exchange_id = exchange_id
        return result

    def validate(self, request: ApiRequest | Mapping[str, Any]) -> ApiRequest:
        """Check a request exactly as ``request`` would, without sending anything.

        Returns it as an ``ApiRequest``; raises ``InvalidRequestError`` (with ``field``) when
        ``request`` would refuse it. Lets callers reject a whole batch before the first call.
        """
        call = ApiRequest.coerce(request)
        self._prepare(call.method, call.path, call.query, call.headers, call.json)
        return call

    def _prepare(
        self, method: Any, path: Any, query: Any, headers: Any, json: Any
    ) -> tuple[str, str, str, dict[str, str], bytes | None]:
        """``(method, url, path, headers, body)`` from the caller's input, or raise."""
        method = clean_method(method)
        url, path = confine_path(self.config.base_url, path)
        extra_headers = clean_headers(headers)
        params = clean_query(query)
        if params:
            joiner = "&" if "?" in url else "?"
            encoded = urlencode(params)
            url, path = f"{url}{joiner}{encoded}", f"{path}{joiner}{encoded}"
        body = None
        if json is not None:
            if method in BODYLESS_METHODS:
                raise InvalidRequestError(f"A {method} request cannot have a body.", field="json")
            body = encode_json(json, max_bytes=self.config.MAX_REQUEST_BYTES)
        return method, url, path, extra_headers, body

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)

    # --- many calls --------------------------------------------------------------------------

    def iter_many(
        self,
        requests_: Iterable[ApiRequest | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        batch_id: str = "",
    ) -> Iterator[BatchResult]:
        """Send calls concurrently; yield each ``BatchResult`` as soon as it finishes.

        At most ``concurrency`` (default and maximum: ``MAX_WORKERS``) calls run at once. An
        item that fails, even with bad input, becomes a result with ``error`` set; the others
        go on. Stopping iteration early stops starting new calls. Bad ``concurrency`` raises
        ``InvalidRequestError`` at once, before anything is sent.
        """
        items = list(requests_)
        workers = self.config.MAX_WORKERS if concurrency is None else concurrency
        if not 1 <= workers <= self.config.MAX_WORKERS:
            raise InvalidRequestError(
                f"Concurrency must be between 1 and {self.config.MAX_WORKERS} "
                "(POC_API_MAX_WORKERS).",
                field="concurrency",
            )
        return self._run_many(items, workers, batch_id)

    def _run_many(
        self, items: list[ApiRequest | Mapping[str, Any]], workers: int, batch_id: str
    ) -> Iterator[BatchResult]:
        # When the token cannot be had, the items of the batch share that failure rather than
        # each asking the token endpoint again (and each waiting out its timeout if it hangs).
        token_failures_since = timezone.now()
        writer = ExchangeWriter()

        def send(item: ApiRequest | Mapping[str, Any]) -> ApiResponse:
            call = ApiRequest.coerce(item)
            return self._request(
                call.method,
                call.path,
                query=call.query,
                headers=call.headers,
                json=call.json,
                batch_id=batch_id,
                token_failures_since=token_failures_since,
                writer=writer,
            )

        try:
            for index, outcome in iter_in_threads(send, items, workers=workers):
                pending = getattr(outcome, "exchange_id", None)
                if isinstance(pending, Future):
                    outcome.exchange_id = pending.result()  # committed by now, or soon
                if isinstance(outcome, ApiResponse):
                    yield BatchResult(index, items[index], response=outcome)
                else:
                    if not isinstance(outcome, ApiError):
                        logger.error("Unexpected error in batch item %d", index, exc_info=outcome)
                    yield BatchResult(index, items[index], error=outcome)
        finally:
            writer.close()  # every exchange of the batch is committed before it returns

    def request_many(
        self,
        requests_: Iterable[ApiRequest | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        batch_id: str = "",
    ) -> list[BatchResult]:
        """Like ``iter_many``, but wait for all and return the results in input order."""
        items = list(requests_)
        results: list[BatchResult | None] = [None] * len(items)
        for result in self.iter_many(items, concurrency=concurrency, batch_id=batch_id):
            results[result.index] = result
        return results  # type: ignore[return-value]

    # --- transport ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        token: str | None,
    ) -> tuple[requests.Response, int]:
        _attempts.count = 1
        if token is not None:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        response = self.session.request(
            method,
            url,
            data=body,
            headers=headers,
            timeout=self._timeout,
            allow_redirects=False,
        )
        return response, _attempts.count

    def _post_token_form(
        self, fields: Mapping[str, str], headers: Mapping[str, str]
    ) -> ApiResponse:
        """POST a form to the token endpoint and record it; used by ``TokenManager``."""
        url = self.config.TOKEN_URL
        body = urlencode(fields).encode()
        send_headers = {**headers, "Content-Type": _FORM}
        request_id = get_request_id()
        if request_id:
            send_headers[REQUEST_ID_HEADER] = request_id
        secrets = (self.config.CLIENT_SECRET, fields.get("refresh_token", ""))
        started = time.perf_counter()
        response = error = None
        attempts = 1
        try:
            raw, attempts = self._send("POST", url, send_headers, body, token=None)
        except requests.RequestException as exc:
            attempts = getattr(_attempts, "count", 1)
            error = _network_error(exc, url, self._timeout)
        else:
            response = ApiResponse(
                method="POST",
                url=url,
                path=urlsplit(url).path,
                status=raw.status_code,
                headers=dict(raw.headers),
                content=raw.content,
                duration_ms=0.0,
                attempts=attempts,
                request_id=request_id,
            )
            secrets += _token_values(response)
        duration_ms = (time.perf_counter() - started) * 1000
        exchange_id = self._record(
            kind=Exchange.Kind.TOKEN,
            method="POST",
            url=url,
            path=urlsplit(url).path,
            headers={**self.session.headers, **send_headers},
            body=body,
            response=response,
            duration_ms=duration_ms,
            attempts=attempts,
            error=error,
            secrets=secrets,
        )
        if error is not None:
            error.exchange_id = exchange_id
            raise error
        assert response is not None  # noqa: S101
        response.duration_ms, response.exchange_id = duration_ms, exchange_id
        return response

    # --- the exchange log --------------------------------------------------------------------

    def _record(
        self,
        *,
        kind: str,
        method: str,
        url: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        response: ApiResponse | None,
        duration_ms: float,
        attempts: int,
        error: ApiError | None,
        secrets: tuple[str, ...],
        batch_id: str = "",
        writer: ExchangeWriter | None = None,
    ) -> int | Future[int | None] | None:
        """Store the call as an ``Exchange``; a failure to store never hides the API result.

        With a batch's ``writer``, the row is queued and a future of its id returned.
        """
        limit = self.config.LOG_BODY_LIMIT
        secrets = (*secrets, self.config.CLIENT_SECRET)
        url, path = redact_url(url), redact_url(path)
        request_headers = redact_headers(headers)
        request_body = scrub(redact_body(body, request_headers.get("Content-Type", "")), secrets)
        status = response.status if response else None
        response_headers = redact_headers(response.headers) if response else {}
        response_body, truncated = "", False
        if response is not None:
            response_body = scrub(redact_body(response.content, response.content_type), secrets)
            response_body, truncated = truncate(response_body, limit)
        thread = threading.current_thread()
        logger.info(
            "%s %s -> %s in %.1f ms (attempts=%d) request headers=%s",
            method,
            url,
            status if status is not None else (error.code if error else "no response"),
            duration_ms,
            attempts,
            request_headers,
        )
        exchange = Exchange(
            kind=kind,
            method=method,
            url=url[:4096],
            path=path[:4096],
            request_headers=request_headers,
            request_body=truncate(request_body, limit)[0],
            status=status,
            response_headers=response_headers,
            response_body=response_body,
            response_truncated=truncated,
            duration_ms=round(duration_ms, 3),
            attempts=min(attempts, 32767),
            error=scrub(error.message, secrets) if error else "",
            error_code=error.code if error else "",
            thread=f"{thread.name} ({thread.ident})"[:100],
            request_id=get_request_id(),
            batch_id=batch_id,
        )
        if writer is not None:
            return writer.submit(exchange)
        return store(exchange)


def _token_values(response: ApiResponse) -> tuple[str, ...]:
    try:
        data = response.json()
    except ValueError:
        return ()
    if not isinstance(data, dict):
        return ()
    return tuple(str(data[k]) for k in ("access_token", "refresh_token", "id_token") if data.get(k))


def _network_error(
    exc: requests.RequestException, url: str, timeout: tuple[float, float]
) -> ApiConnectionError:
    host = urlsplit(url).netloc
    chain = _cause_chain(exc)
    if isinstance(exc, requests.ConnectTimeout) or any(
        isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError) for e in chain
    ):
        return ApiTimeoutError(
            f"Connecting to {host} timed out after {timeout[0]:g} s (POC_API_CONNECT_TIMEOUT)."
        )
    # After retries, requests reports a read timeout as a ConnectionError: look inside.
    if isinstance(exc, requests.ReadTimeout) or any(isinstance(e, ReadTimeoutError) for e in chain):
        return ApiTimeoutError(
            f"{host} did not answer within {timeout[1]:g} s (POC_API_READ_TIMEOUT)."
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


_shared: ApiClient | None = None
_shared_guard = threading.Lock()


def reset_client() -> None:
    """Close and forget the shared client; the next ``get_client()`` builds a new one."""
    global _shared
    with _shared_guard:
        client, _shared = _shared, None
    if client is not None:
        client.close()


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    # Only tests change settings at run time. Closing the old client ends its keep-alive
    # connections, which would otherwise pin server threads (and their database sessions).
    if setting == "POC_API":
        reset_client()


def get_client() -> ApiClient:
    """The process's client for the current settings (rebuilt when ``POC_API`` changes)."""
    global _shared
    config = api_settings()
    client = _shared
    if client is None or client.config is not config:
        with _shared_guard:
            if _shared is None or _shared.config is not config:
                _shared = ApiClient(config)
            client = _shared
    return client

"""``ApiClient``: the coordinator of a call, and the process's shared client.

A call goes one way, whoever makes it: ``prepare`` checks the request once (path confined to
the base URL, method, headers, query, body size and depth; ``api_client.validation``) and
encodes its body once, into a ``Call``; ``send`` attaches a bearer token
(``api_client.tokens``), hands the call to the transport (``api_client.transport``: pooled
connections, the retry policy), refreshes once and sends again after a 401, and records the
call as one ``Exchange`` (``api_client.recording``). Token requests take the same path
(``_post_token_form``): sent, timed, recorded and turned into errors by the same code.

``request_many`` fans calls out over a bounded pool of threads that manage their own database
connections (``api_client.pool``), and hands their exchanges to a writer thread that commits
many per transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import grants
from .conf import ApiSettings, api_settings
from .connections import settings_for
from .context import REQUEST_ID_HEADER, get_request_id
from .deadline import current as current_deadline
from .deadline import deadline
from .exceptions import ApiError, InvalidRequestError, RetryLaterError, TokenError
from .ledger import LEDGER, SETTLE_GRACE
from .messages import ApiRequest, ApiResponse, BatchResult, Call, Outcome, Reply
from .models.connections import DEFAULT, scoped
from .pool import iter_in_threads
from .ratelimit import RateLimiter, parse_rules
from .recording import completion, pending_exchange
from .redaction import redact_url
from .tokens import REFUSES_FRESH_TOKENS, TokenManager
from .transport import DEFAULT_HEADERS, Transport
from .transport.retries import retry_after_seconds
from .validation import (
    BODYLESS_METHODS,
    IDEMPOTENT_METHODS,
    clean_headers,
    clean_method,
    clean_query,
    confine_path,
    encode_json,
)

logger = logging.getLogger(__name__)

_FORM = "application/x-www-form-urlencoded"

type Item = ApiRequest | Mapping[str, Any] | Call


class ApiClient:
    """A client for the configured API. Thread-safe; share one per process (``get_client``)."""

    def __init__(self, config: ApiSettings | None = None) -> None:
        self.config = config or api_settings()
        self.transport = Transport(self.config)
        # One connection's limits and pauses never slow another's, even on the same API.
        scope = scoped(self.config.base_url, self.config.NAME)
        self.limits = RateLimiter(
            parse_rules(self.config.RATE_LIMIT, scope),
            scope=scope,
            max_wait=self.config.RETRY_AFTER_MAX,
            settings=self.config.named("RATE_LIMIT", "RETRY_AFTER_MAX", "DEADLINE"),
        )
        self.tokens = TokenManager(self.config, self._post_token_form)

    def close(self) -> None:
        """Close the pooled connections now."""
        self.transport.close()

    # --- checked once ------------------------------------------------------------------------

    def prepare(self, request: Item) -> Call:
        """``request`` checked and encoded, ready for ``send``; nothing is sent.

        Raises ``InvalidRequestError`` (with ``field``) for anything ``send`` would refuse:
        the one place where a request is judged, for every caller.
        """
        if isinstance(request, Call):
            return request
        call = ApiRequest.coerce(request)
        method = clean_method(call.method)
        url, path = confine_path(self.config.base_url, call.path)
        headers = clean_headers(call.headers)
        params = clean_query(call.query)
        if params:
            joiner = "&" if "?" in url else "?"
            encoded = urlencode(params)
            url, path = f"{url}{joiner}{encoded}", f"{path}{joiner}{encoded}"
        body = None
        if call.json is not None:
            if method in BODYLESS_METHODS:
                raise InvalidRequestError(f"A {method} request cannot have a body.", field="json")
            body = encode_json(call.json, max_bytes=self.config.MAX_REQUEST_BYTES)
        return Call(call, method, url, path, headers, body)

    def validate(self, request: ApiRequest | Mapping[str, Any]) -> ApiRequest:
        """Check a request exactly as ``request`` would, without sending anything."""
        return self.prepare(request).request

    def concurrency(self, value: int | None) -> int:
        """How many calls of a batch may run at once: ``value`` checked, or the maximum."""
        cap = self.config.MAX_WORKERS
        if value is None:
            return cap
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
            raise InvalidRequestError(
                f"Concurrency must be between 1 and {cap} ({self.config.named('MAX_WORKERS')}).",
                field="concurrency",
            )
        return value

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
        call = self.prepare(ApiRequest(method, path, query, headers, json))
        return self.send(call, batch_id=batch_id)

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

    def send(
        self,
        call: Call,
        *,
        batch_id: str = "",
        token_failures_since: datetime | None = None,
        wait: bool = False,
        reference: str = "",
    ) -> ApiResponse:
        """Send a prepared call with a bearer token; one refresh and one retry after a 401.

        ``token_failures_since`` is passed on to ``TokenManager.get_token``. The call returns
        before its end is committed to the log (its pending row was, before it left; this
        process's reads of the log wait for the end: ``Ledger.read_barrier``); ``wait=True``
        returns after. ``reference`` is stored on its exchange (a job's item finds its
        exchange by it).
        """
        headers = self._headers(call, {"Accept": "application/json"})
        if call.body is not None:
            headers.setdefault("Content-Type", "application/json")
        try:
            token = self.tokens.get_token(failed_since=token_failures_since)
        except TokenError as exc:  # never sent: on record at once, as failed
            self._never_sent(call, headers, exc, batch_id, reference)
            raise
        headers["Authorization"] = f"Bearer {token}"

        @sensitive_variables("token")
        def attempt(outcome: Outcome) -> Reply:
            nonlocal token
            reply = self._limited(call, outcome)
            if reply.status != 401:
                return reply
            if self.tokens.refusing():
                outcome.note = REFUSES_FRESH_TOKENS
                return reply
            # Exactly one refresh and one retry: the token may have been revoked early.
            outcome.attempts = reply.attempts
            outcome.reply = reply
            token = self.tokens.get_token(stale=token)
            outcome.headers["Authorization"] = f"Bearer {token}"
            again = self._limited(call, outcome)
            again.attempts += reply.attempts
            if again.status == 401:
                self.tokens.refused_fresh_token()
                outcome.note = REFUSES_FRESH_TOKENS
            return again

        return self._exchange(
            call, headers, attempt, batch_id=batch_id, wait=wait, reference=reference
        )

    def _limited(self, call: Call, outcome: Outcome) -> Reply:
        """Send within the rate limit and any pause; a 429 pauses every sender, and an
        idempotent call is sent again once the pause allows (``RETRIES`` times at most)."""
        attempts = 0
        while True:
            current = current_deadline()
            self.limits.acquire(call.method, call.path, within=current.remaining())
            reply = self.transport.send(call.method, call.url, outcome.headers, call.body)
            reply.attempts += attempts
            paused = self.limits.observe(reply.status, reply.headers)
            retry = call.method in IDEMPOTENT_METHODS and attempts < self.config.RETRIES
            if reply.status != 429 or not retry:
                return reply
            # What the API asked for (the pause is capped); longer than the call may wait, it
            # fails now, saying when, rather than after a wait that cannot succeed.
            header = next((v for k, v in reply.headers.items() if k.lower() == "retry-after"), None)
            asked = retry_after_seconds(header) or paused
            if asked > min(current.remaining(), self.config.RETRY_AFTER_MAX):
                error = RetryLaterError(
                    f"{urlsplit(call.url).netloc} answered 429 and asked to be called again in "
                    f"{asked:g} s, longer than this call may wait "
                    f"({self.config.named('RETRY_AFTER_MAX', 'DEADLINE')}); retry after that.",
                    retry_after=asked,
                    status=429,
                )
                error.attempts, error.reply = reply.attempts, reply
                raise error
            attempts = reply.attempts
            outcome.reply = reply  # what stands if the pause is longer than the call may wait
            logger.warning("Retrying %s %s after status 429", call.method, redact_url(call.path))

    @sensitive_variables("fields", "headers", "body", "own")
    def _post_token_form(
        self, fields: Mapping[str, str], headers: Mapping[str, str]
    ) -> ApiResponse:
        """POST a form to the token endpoint and record it; used by ``TokenManager``."""
        url = self.config.TOKEN_URL
        body = urlencode(fields).encode()
        call = Call(ApiRequest("POST", url), "POST", url, urlsplit(url).path, {}, body, "token")

        def attempt(outcome: Outcome) -> Reply:
            reply = self.transport.send("POST", url, outcome.headers, body)
            # What the answer holds is a secret before it is recorded.
            self.tokens.learn(grants.token_values(reply.content))
            return reply

        own = {**headers, "Content-Type": _FORM}
        return self._exchange(call, self._headers(call, own), attempt)

    def _headers(self, call: Call, own: Mapping[str, str]) -> dict[str, str]:
        headers = {**DEFAULT_HEADERS, **own, **call.headers}
        if request_id := get_request_id():
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    # --- the one send-and-record path --------------------------------------------------------

    def _exchange(
        self,
        call: Call,
        headers: dict[str, str],
        attempt: Callable[[Outcome], Reply],
        *,
        batch_id: str = "",
        wait: bool = False,
        reference: str = "",
    ) -> ApiResponse:
        """Record the call as pending, run ``attempt``, time it, record what became of it,
        raise its error.

        The pending row is committed before anything is sent (``api_client.ledger``); if it
        cannot be, the call is not sent and ``LedgerError`` says so.
        """
        secrets = self.tokens.held_secrets()
        exchange = pending_exchange(
            call,
            headers,
            connection=self.config.NAME,
            secrets=secrets,
            body_limit=self.config.LOG_BODY_LIMIT,
            batch_id=batch_id,
            reference=reference,
            settle_by=timezone.now() + timedelta(seconds=self.config.DEADLINE) + SETTLE_GRACE,
        )
        request_id = exchange.request_id
        LEDGER.open(exchange)
        outcome = Outcome(headers=headers)
        try:
            with deadline(self.config.DEADLINE):  # the whole call, a 401's refresh included
                reply = attempt(outcome)
        except ApiError as exc:
            outcome.error = exc
            reply = exc.reply or outcome.reply  # what came before it failed, if anything
            outcome.attempts += exc.attempts
        else:
            outcome.attempts = reply.attempts
        outcome.stop()
        if reply is not None:
            outcome.response = ApiResponse(
                method=call.method,
                url=call.url,
                path=call.path,
                status=reply.status,
                headers=reply.headers,
                content=reply.content,
                duration_ms=outcome.duration_ms,
                attempts=outcome.attempts,
                request_id=request_id,
                note=outcome.note,
            )
        fields = completion(
            exchange, outcome, secrets=secrets, body_limit=self.config.LOG_BODY_LIMIT
        )
        LEDGER.close(exchange, fields, wait=wait)
        if outcome.error is not None:
            outcome.error.exchange_id, outcome.error.request_id = exchange.pk, request_id
            raise outcome.error
        assert outcome.response is not None  # noqa: S101 (no error means a response)
        outcome.response.exchange_id = exchange.pk
        return outcome.response

    def _never_sent(
        self, call: Call, headers: dict[str, str], error: ApiError, batch_id: str, reference: str
    ) -> None:
        secrets = self.tokens.held_secrets()
        limit = self.config.LOG_BODY_LIMIT
        exchange = pending_exchange(
            call,
            headers,
            connection=self.config.NAME,
            secrets=secrets,
            body_limit=limit,
            batch_id=batch_id,
            reference=reference,
        )
        outcome = Outcome(headers=headers, error=error)
        for name, value in completion(exchange, outcome, secrets=secrets, body_limit=limit).items():
            setattr(exchange, name, value)
        error.exchange_id, error.request_id = LEDGER.record(exchange), exchange.request_id

    # --- many calls --------------------------------------------------------------------------

    def iter_many(
        self, requests_: Iterable[Item], *, concurrency: int | None = None, batch_id: str = ""
    ) -> Iterator[BatchResult]:
        """Send calls concurrently; yield each ``BatchResult`` as soon as it finishes.

        At most ``concurrency`` (default and maximum: ``MAX_WORKERS``) calls run at once. An
        item that fails, even with bad input, becomes a result with ``error`` set; the others
        go on. Stopping iteration early stops starting new calls. Bad ``concurrency`` raises
        ``InvalidRequestError`` at once, before anything is sent.
        """
        items = list(requests_)
        return self._run_many(items, self.concurrency(concurrency), batch_id)

    def _run_many(self, items: list[Item], workers: int, batch_id: str) -> Iterator[BatchResult]:
        # When the token cannot be had, the items of the batch share that failure rather than
        # each asking the token endpoint again (and each waiting out its timeout if it hangs).
        token_failures_since = timezone.now()

        def send(item: Item) -> ApiResponse:
            return self.send(
                self.prepare(item),
                batch_id=batch_id,
                token_failures_since=token_failures_since,
                wait=False,
            )

        try:
            for index, outcome in iter_in_threads(send, items, workers=workers):
                request = items[index]
                if isinstance(request, Call):
                    request = request.request
                if isinstance(outcome, ApiResponse):
                    yield BatchResult(index, request, response=outcome)
                else:
                    if not isinstance(outcome, ApiError):
                        logger.error("Unexpected error in batch item %d", index, exc_info=outcome)
                    yield BatchResult(index, request, error=outcome)
        finally:
            LEDGER.flush()  # every exchange of the batch is committed before it returns

    def request_many(
        self, requests_: Iterable[Item], *, concurrency: int | None = None, batch_id: str = ""
    ) -> list[BatchResult]:
        """Like ``iter_many``, but wait for all and return the results in input order."""
        items = list(requests_)
        results: list[BatchResult | None] = [None] * len(items)
        for result in self.iter_many(items, concurrency=concurrency, batch_id=batch_id):
            results[result.index] = result
        return results  # type: ignore[return-value]


_shared: dict[str, ApiClient] = {}
_shared_guard = threading.Lock()


def reset_client(name: str | None = None) -> None:
    """Close and forget the shared client of ``name`` (of every connection, when ``None``);
    the next ``get_client`` builds a new one."""
    with _shared_guard:
        if name is None:
            closing = list(_shared.values())
            _shared.clear()
        else:
            closing = [client] if (client := _shared.pop(name, None)) else []
    for client in closing:
        client.close()


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    # Only tests change settings at run time. Closing the old client ends its keep-alive
    # connections, which would otherwise pin server threads (and their database sessions).
    if setting == "POC_API":
        reset_client()


def get_client(connection: str = DEFAULT) -> ApiClient:
    """The process's client for the connection named ``connection`` (``default``: the
    environment's ``POC_API_*``), rebuilt when its settings change.

    Raises ``UnknownConnectionError`` (an ``InvalidRequestError`` on ``connection``) when there
    is no such connection, it is switched off, or its settings or secret are unusable.
    """
    config = settings_for(connection)
    client = _shared.get(connection)
    if client is None or client.config is not config:
        with _shared_guard:
            client = _shared.get(connection)
            if client is None or client.config is not config:
                # The old client is not closed: calls in flight on it finish; its idle
                # connections go with it when it is collected.
                client = ApiClient(config)
                _shared[connection] = client
    return client

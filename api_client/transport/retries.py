"""The one retry policy: urllib3's ``Retry``, safe against a hostile server and bounded by the
call's deadline (see ``_Retry``)."""

from __future__ import annotations

import logging
import math
import time
from email.utils import parsedate_to_datetime
from typing import Any

from urllib3 import BaseHTTPResponse
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from ..conf import ApiSettings
from ..deadline import Deadline
from ..redaction import redact_url

logger = logging.getLogger("api_client.transport")

# 429 is the client's to retry (ApiClient.send): its pause is shared by every sender first.
RETRY_STATUSES = frozenset({502, 503, 504})


class CallState:
    """What one call's retries share: its deadline, the retries made, and whether the API
    asked to be called back later than the call may wait."""

    __slots__ = ("deadline", "retries", "retry_later")

    def __init__(self, deadline: Deadline | None) -> None:
        self.deadline = deadline
        self.retries: list[str] = []
        self.retry_later: float | None = None

    @property
    def attempts(self) -> int:
        return len(self.retries) + 1


class RetryPolicy(Retry):
    """urllib3's Retry, made safe against a hostile server and bounded by the call's deadline.

    - ``state`` is given to each call (``for_call``); ``new()``, which urllib3 calls on every
      increment, passes it on.
    - A response that will be retried is closed, not drained: urllib3 would read a hostile
      body to its end first (500 MB, or a drip until the deadline).
    - No wait crosses the deadline: a retry whose back-off would is not made (the last answer
      stands), and a ``Retry-After`` longer than ``RETRY_AFTER_MAX`` or than the time left
      ends the call with ``RetryLaterError`` rather than a sleep.
    - ``Retry-After`` is parsed without trusting it (a date, or at most ten digits).
    """

    state: CallState
    # Not 429: urllib3 would sleep out its Retry-After inside the transport, unseen by the
    # rate limiter, whose pause must hold every sender first (ApiClient._limited retries it).
    RETRY_AFTER_STATUS_CODES = frozenset({413, 503})

    def new(self, **kw: Any) -> RetryPolicy:
        retry = super().new(**kw)
        retry.state = self.state
        return retry

    def for_call(self, deadline: Deadline | None) -> RetryPolicy:
        retry = self.new()
        retry.state = CallState(deadline)
        return retry

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        return retry_after_seconds(response.headers.get("Retry-After"))

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        remaining = self.state.deadline.remaining() if self.state.deadline else math.inf
        if response is not None:
            asked = self.get_retry_after(response)
            if asked is not None and asked > min(self.retry_after_max, remaining):
                self.state.retry_later = asked
                # urlopen hands back the response it got, unread (raise_on_status is off).
                raise MaxRetryError(_pool, url, ResponseError("Retry-After beyond the deadline"))
        if new.planned_wait(response) >= remaining:
            raise MaxRetryError(_pool, url, error or ResponseError("no time left to retry"))
        if response is not None:
            response.close()
            response.release_conn()
        cause = f"status {response.status}" if response is not None else type(error).__name__
        self.state.retries.append(cause)
        logger.warning(
            "Retrying %s %s after %s (attempt %d)",
            method,
            redact_url(url or ""),
            cause,
            self.state.attempts,
        )
        return new

    def planned_wait(self, response: BaseHTTPResponse | None) -> float:
        asked = self.get_retry_after(response) if response is not None else None
        return asked if asked is not None else self.get_backoff_time()

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        # urllib3's clamps the wait to retry_after_max; increment() has refused longer ones.
        asked = self.get_retry_after(response)
        if asked:
            time.sleep(asked)
            return True
        return False


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` value; None when absent or malformed."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to str.isdigit, not to float
        return float(value) if len(value) <= 10 else None
    if len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_policy(config: ApiSettings) -> RetryPolicy:
    retry = RetryPolicy(
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
    retry.state = CallState(None)
    return retry

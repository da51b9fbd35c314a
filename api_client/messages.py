"""The values that travel: a request as callers give it, a call as it goes out, and answers.

``ApiRequest`` is the one request shape: forms, JSON Lines, replay and batches build it, the
client checks it once (``ApiClient.prepare``) into a ``Call``, and ``dataclasses.asdict``
turns it back into a payload. ``ApiResponse`` and ``BatchResult`` are what callers get back.
Nothing here does I/O, so every other module may import it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .exceptions import ApiError, HTTPStatusError, InvalidRequestError


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One call to make: ``method`` and ``path`` (below the base URL; ``""`` is the base URL
    itself), with optional ``query``, ``headers`` and a ``json`` body."""

    method: str
    path: str
    query: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    json: Any = None

    FIELDS: ClassVar[tuple[str, ...]] = ("method", "path", "query", "headers", "json")
    DEFAULT_METHOD: ClassVar[str] = "GET"

    @classmethod
    def coerce(cls, value: ApiRequest | Mapping[str, Any]) -> ApiRequest:
        """``value`` as an ``ApiRequest``: the one place that decides which keys a request
        object may have and which it must have. ``path`` is required (``""`` is the base URL
        itself); ``method`` defaults to GET, as curl's does."""
        if isinstance(value, ApiRequest):
            return value
        if not isinstance(value, Mapping):
            raise InvalidRequestError("Each request must be an object.", field="requests")
        unknown = set(value) - set(cls.FIELDS)
        if unknown:
            raise InvalidRequestError(
                f"Unknown request field(s): {', '.join(sorted(map(str, unknown)))}; "
                f"use {', '.join(cls.FIELDS)}.",
                field="requests",
            )
        if value.get("path") is None:
            raise InvalidRequestError("The path is missing.", field="path")
        fields = {name: value.get(name) for name in cls.FIELDS}
        if fields["method"] is None:
            fields["method"] = cls.DEFAULT_METHOD
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class Call:
    """A request checked and encoded, ready to send: what ``ApiClient.prepare`` returns.

    ``headers`` are the caller's (cleaned); the client adds its own when it sends. ``body`` is
    the JSON encoded once, or a token request's form.
    """

    request: ApiRequest
    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    kind: str = "api"


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
    note: str = ""  # what pocclient has to say about this answer (an API refusing tokens)

    @property
    def status_code(self) -> int:
        """``status``, by the name every ``requests`` user types."""
        return self.status

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
        except (ValueError, RecursionError):
            return self.text

    def raise_for_status(self) -> ApiResponse:
        if self.status >= 400:
            error_class = HTTPStatusError.for_status(self.status)
            raise error_class(
                f"{self.method} {self.path} answered {self.status}."
                + (f" {self.note}" if self.note else ""),
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

    @property
    def outcome(self) -> str:
        """What the result counts as in a summary: its status, or its error's code."""
        if self.response is not None:
            return str(self.response.status)
        if isinstance(self.error, ApiError):
            return self.error.code
        return "internal_error"


@dataclass(slots=True)
class Reply:
    """What the transport got back for one call, after all its attempts."""

    status: int
    headers: dict[str, str]
    content: bytes
    attempts: int


@dataclass(slots=True)
class Outcome:
    """What became of a ``Call``: the answer or the error, and what it took."""

    headers: dict[str, str] = field(default_factory=dict)  # as sent, credentials included
    reply: Reply | None = None
    response: ApiResponse | None = None
    error: ApiError | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    note: str = ""
    started: float = field(default_factory=time.perf_counter)

    def restart(self) -> None:
        """Time the call from now (not the wait for its token)."""
        self.started = time.perf_counter()

    def stop(self) -> None:
        self.duration_ms = (time.perf_counter() - self.started) * 1000

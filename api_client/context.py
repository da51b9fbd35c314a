"""Who and what caused the current API calls: the request id of a page request or command
run, and the actor (the user, or the command).

``ContextVar``s rather than thread-locals: ``request_many`` copies the caller's context into
its worker threads, so calls made there carry the caller's id without passing it around.
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# Accept what common proxies generate (UUIDs, hex, base64url) but nothing that could smuggle
# control characters or markup into logs and headers.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_request_id: ContextVar[str] = ContextVar("api_client_request_id", default="")
_actor: ContextVar[str] = ContextVar("api_client_actor", default="")
MAX_ACTOR = 150


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_well_formed(candidate: str | None) -> bool:
    """Whether ``candidate`` may be used as a request id as it is."""
    return bool(candidate and _WELL_FORMED.fullmatch(candidate))


def clean_request_id(candidate: str | None) -> str:
    """``candidate`` when it is a well-formed id, else a fresh one."""
    if candidate and is_well_formed(candidate):
        return candidate
    return new_request_id()


def get_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_scope(request_id: str | None = None) -> Iterator[str]:
    """Run a block with ``request_id`` (cleaned, or generated) as the current request id."""
    value = clean_request_id(request_id)
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


def get_actor() -> str:
    """Who caused the current calls: a user name, ``command NAME``, or ``""`` (Python code)."""
    return _actor.get()


@contextmanager
def actor_scope(actor: str) -> Iterator[str]:
    """Run a block with ``actor`` as the one who causes its API calls."""
    value = " ".join(actor.split())[:MAX_ACTOR]
    token = _actor.set(value)
    try:
        yield value
    finally:
        _actor.reset(token)

"""The exchange log's rows: a call as it leaves, and what became of it, redacted.

``pending_exchange`` is the row written before the request is sent (the request side);
``completion`` the fields that complete it (the response side, the state, the log line).
Redaction and truncation happen here, so whatever the API sent is storable and holds no
secret; ``api_client.ledger`` does the writing.
"""

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .context import get_actor, get_request_id
from .messages import Call, Outcome
from .models import Exchange
from .redaction import (
    redact_body,
    redact_headers,
    redact_url,
    scrub,
    storable,
    storable_headers,
    truncate,
)

logger = logging.getLogger(__name__)

MAX_URL = 4096
MAX_SMALLINT = 32767
MAX_ERROR = 2000


def pending_exchange(
    call: Call,
    headers: dict[str, str],
    *,
    secrets: Iterable[str],
    body_limit: int,
    connection: str = "default",
    batch_id: str = "",
    reference: str = "",
    settle_by: datetime | None = None,
) -> Exchange:
    """The row of ``call`` as it leaves: the request side, every secret redacted, every text
    storable; ``api_client.ledger`` writes it before the request is sent."""
    secrets = tuple(secrets)
    request_headers = storable_headers(redact_headers(headers, secrets))
    content_type = request_headers.get("Content-Type", "")
    request_body = storable(redact_body(call.body, content_type, secrets))
    thread = threading.current_thread()
    return Exchange(
        kind=call.kind,
        connection=connection,
        state=Exchange.State.PENDING,
        settle_by=settle_by,
        method=call.method,
        url=redact_url(call.url)[:MAX_URL],
        path=redact_url(call.path)[:MAX_URL],
        request_headers=request_headers,
        request_body=truncate(request_body, body_limit)[0],
        attempts=0,
        thread=f"{thread.name} ({thread.ident})"[:100],
        request_id=get_request_id(),
        batch_id=batch_id,
        reference=reference[:64],
        actor=get_actor(),
    )


def completion(
    exchange: Exchange, outcome: Outcome, *, secrets: Iterable[str], body_limit: int
) -> dict[str, Any]:
    """The fields that complete ``exchange`` with what became of its call (and the log line)."""
    secrets = tuple(secrets)
    response, error = outcome.response, outcome.error
    fields: dict[str, Any] = {
        "state": state_of(outcome),
        "status": None,
        "response_headers": {},
        "response_body": "",
        "response_truncated": False,
        "duration_ms": round(outcome.duration_ms, 3),
        "attempts": min(outcome.attempts, MAX_SMALLINT),
        "error": storable(scrub(error.message, secrets))[:MAX_ERROR] if error else "",
        "error_code": error.code[:40] if error else "",
    }
    if response is not None:
        body = redact_body(response.content, response.content_type, secrets)
        body, truncated = truncate(storable(body), body_limit)
        fields.update(
            status=response.status if 0 <= response.status <= MAX_SMALLINT else None,
            response_headers=storable_headers(redact_headers(response.headers, secrets)),
            response_body=body,
            response_truncated=truncated,
        )
    logger.info(
        "%s %s -> %s in %.1f ms (attempts=%d) request headers=%s",
        exchange.method,
        exchange.url,
        fields["status"] or fields["error_code"] or "no response",
        outcome.duration_ms,
        outcome.attempts,
        exchange.request_headers,
    )
    return fields


def state_of(outcome: Outcome) -> str:
    """Answered when a status came back; failed when the call surely did not reach the API
    (refused, never sent); unknown when it may have (broken off after sending)."""
    if outcome.response is not None:
        return Exchange.State.ANSWERED
    if outcome.error is not None and outcome.error.reached is False:
        return Exchange.State.FAILED
    return Exchange.State.UNKNOWN

"""After a crash: what became of an item whose lease ran out, read off the exchange log.

A worker that dies leaves its items leased. Once a lease has run out (the longest a call may
take, and a minute), each such item's last exchange (found by the item's ``reference``)
says what happened to it, because every call is on record before it leaves:

- no exchange: it was never sent: planned again;
- answered: the answer came and was recorded, only the item was not: answered;
- failed (it surely did not reach the API): failed, as its worker would have written;
- pending or unknown (it may have reached the API): sent again if that is safe (GET, HEAD,
  OPTIONS, PUT, DELETE, or a job that sends an idempotency key, the same key again),
  unknown otherwise (POST, PATCH): sent again only when a person says so.

Nothing is dropped and nothing is sent twice unless it is safe to. Runs inside the claiming
transaction of a runner (and from the workers' upkeep), so two never reap one item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from api_client.models import Exchange
from api_client.validation import IDEMPOTENT_METHODS

from .models import Item, Job, reference_of

BATCH = 500
SETTLED_FIELDS = ("state", "status", "duration_ms", "error_code", "error", "exchange_id",
                  "sends", "lease_owner", "lease_until", "finished_at")  # fmt: skip


def reap(job: Job, now: datetime | None = None) -> int:
    """Settle ``job``'s items whose lease ran out; returns how many. In a transaction."""
    now = now or timezone.now()
    stale = list(
        job.items.filter(state=Item.State.LEASED, lease_until__lt=now).order_by("index")[:BATCH]
    )
    if not stale:
        return 0
    references = {reference_of(job.key, item.index): item for item in stale}
    last: dict[str, Exchange] = {}
    found = (
        Exchange.objects.filter(reference__in=list(references))
        .only("id", "reference", "state", "status", "duration_ms", "error_code", "error")
        .order_by("id")
    )
    for exchange in found:
        last[exchange.reference] = exchange  # the latest by id wins
    safe_job = bool(job.idempotency_header)
    for reference, item in references.items():
        _settle(item, last.get(reference), safe=safe_job or item.method in IDEMPOTENT_METHODS)
        item.lease_owner, item.lease_until = "", None
        item.finished_at = now if item.state in Item.FINISHED else None
    Item.objects.bulk_update(stale, SETTLED_FIELDS)
    return len(stale)


def _settle(item: Item, exchange: Exchange | None, *, safe: bool) -> None:
    if exchange is None:
        item.state = Item.State.PLANNED
        return
    item.exchange_id = exchange.pk
    shown = exchange.shown_state
    fields: dict[str, Any]
    if shown == Exchange.State.ANSWERED:
        fields = {"state": Item.State.ANSWERED, "status": exchange.status}
    elif shown == Exchange.State.FAILED:
        fields = {"state": Item.State.FAILED, "error_code": exchange.error_code}
    elif safe:
        fields = {"state": Item.State.PLANNED}
    else:
        fields = {
            "state": Item.State.UNKNOWN,
            "error_code": "unknown",
            "error": "The worker sending this call stopped before it was answered; the API "
            "may have received it. Send it again only if you know it did not.",
        }
    fields.setdefault("duration_ms", exchange.duration_ms)
    fields["sends"] = item.sends + 1
    for name, value in fields.items():
        setattr(item, name, value)

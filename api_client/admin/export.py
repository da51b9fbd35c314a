"""Exchanges as JSON Lines or CSV, streamed: an export of any size holds one chunk in memory."""

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from ..models import Exchange
from ..streaming import csv_lines, jsonl_lines

FIELDS = (
    "id",
    "created_at",
    "kind",
    "method",
    "url",
    "path",
    "status",
    "duration_ms",
    "attempts",
    "error_code",
    "error",
    "request_id",
    "batch_id",
    "actor",
    "thread",
    "request_headers",
    "request_body",
    "response_headers",
    "response_body",
    "response_truncated",
)
CHUNK_SIZE = 500


def as_dict(exchange: Exchange) -> dict[str, Any]:
    row = {name: getattr(exchange, name) for name in FIELDS}
    row["created_at"] = exchange.created_at.isoformat()
    return row


def rows(queryset: QuerySet[Exchange]) -> Iterator[Exchange]:
    """Every exchange of ``queryset``, oldest first, with all columns, in chunks."""
    ordered = queryset.defer(None).order_by("created_at", "id")
    return ordered.iterator(chunk_size=CHUNK_SIZE)


def iter_jsonl(exchanges: Iterable[Exchange]) -> Iterator[str]:
    return jsonl_lines(as_dict(exchange) for exchange in exchanges)


def iter_csv(exchanges: Iterable[Exchange]) -> Iterator[str]:
    return csv_lines(FIELDS, (as_dict(exchange) for exchange in exchanges))

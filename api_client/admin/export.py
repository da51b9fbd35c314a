"""Exchanges as JSON Lines or CSV, streamed: an export of any size holds one chunk in memory."""

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from ..models import Exchange

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
# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"); the
# bodies and headers come from the API, so such cells get a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_dict(exchange: Exchange) -> dict[str, Any]:
    row = {name: getattr(exchange, name) for name in FIELDS}
    row["created_at"] = exchange.created_at.isoformat()
    return row


def rows(queryset: QuerySet[Exchange]) -> Iterator[Exchange]:
    """Every exchange of ``queryset``, oldest first, with all columns, in chunks."""
    ordered = queryset.defer(None).order_by("created_at", "id")
    return ordered.iterator(chunk_size=CHUNK_SIZE)


def iter_jsonl(exchanges: Iterable[Exchange]) -> Iterator[str]:
    for exchange in exchanges:
        yield json.dumps(as_dict(exchange), ensure_ascii=False) + "\n"


class _Line:
    """A file-like object whose ``write`` returns what it was given, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def iter_csv(exchanges: Iterable[Exchange]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(FIELDS)
    for exchange in exchanges:
        yield writer.writerow([_cell(value) for value in as_dict(exchange).values()])

"""Rows streamed as JSON Lines or CSV, one line at a time: a download of any size holds one
chunk of its query in memory. The admin's exchange export and a job's results both use it."""

import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"); bodies,
# headers, paths and errors come from people and the API, so such cells get a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def jsonl_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


class _Line:
    """A file-like object whose ``write`` returns what it was given, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([cell(row[name]) for name in header])

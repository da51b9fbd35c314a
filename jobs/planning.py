"""Making a job: its calls checked and written, every one, before the first is sent.

From JSON Lines of requests (as ``send_batch`` has always read them), from requests in
memory (the console's batch), or from one request template and a data file: CSV with a
header row, or JSON Lines of objects; ``{{column}}`` in the template's path, query, headers
and JSON body is filled from each row, as a collection runner does with data files. (A JSON
string that is exactly ``{{column}}`` takes the row's value as it is: a number stays one.)

Input is read as a stream and written in chunks, so 100,000 calls cost the memory of one
chunk. Each call is checked by the client (``ApiClient.prepare``, the one place requests are
judged); a job with any bad call is not kept: every problem is reported by its line, and the
job and what was written of it are deleted, nothing sent. The job runs only once planning
has ended (``state`` goes from planning to running).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.db import transaction
from django.utils import timezone

from api_client.client import ApiClient
from api_client.context import get_actor
from api_client.exceptions import InvalidRequestError
from api_client.messages import ApiRequest, Call

from .models import Item, Job

CHUNK = 5000
ENVELOPE_ALLOWANCE = 64 * 1024  # bytes of a line besides its body
MAX_PROBLEMS = 20
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


class PlanningError(ValueError):
    """The calls cannot make a job; ``problems`` name their lines. Nothing was kept."""

    def __init__(self, problems: list[str], count: int) -> None:
        self.problems = problems
        self.count = count
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun}; nothing was planned or sent.")


@dataclass(slots=True)
class Source:
    """Numbered requests, or a problem found reading one (line number, request or text)."""

    items: Iterable[tuple[int, ApiRequest | Mapping[str, Any] | str]]
    problems: list[str] = field(default_factory=list)


def plan(
    client: ApiClient,
    requests: Iterable[tuple[int, ApiRequest | Mapping[str, Any] | str]],
    *,
    name: str = "",
    origin: str = Job.Origin.PYTHON,
    concurrency: int | None = None,
    idempotency_header: str = "",
    line_noun: str = "line",
) -> Job:
    """Check and write every call of ``requests`` (``(number, request)`` pairs, or
    ``(number, "problem")`` for one that could not be read), then let the job run.

    Raises ``PlanningError`` (and keeps nothing) when any call is bad; ``InvalidRequestError``
    when the job's own settings are.
    """
    concurrency = client.concurrency(concurrency)
    header = _header_name(idempotency_header)
    job = Job.objects.create(
        connection=client.config.NAME,
        name=name[:200],
        origin=origin,
        created_by=get_actor(),
        concurrency=concurrency,
        idempotency_header=header,
    )
    problems: list[str] = []
    count = 0
    total = 0
    chunk: list[Item] = []
    try:
        for number, request in requests:
            try:
                if isinstance(request, str):
                    raise InvalidRequestError(request)
                call = client.prepare(request)
            except InvalidRequestError as exc:
                count += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"{line_noun} {number}: {exc.message}")
                continue
            if problems:
                continue  # the job will not be kept: check the rest, write nothing more
            chunk.append(_row(total, call, header))
            total += 1
            if len(chunk) >= CHUNK:
                Item.objects.plan_rows(job, chunk)
                chunk = []
        if problems:
            raise PlanningError(problems, count)
        Item.objects.plan_rows(job, chunk)
    except BaseException:
        job.delete()
        raise
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(
            total=total, state=Job.State.RUNNING, started_at=timezone.now()
        )
    job.refresh_from_db()
    return job


def _row(index: int, call: Call, header: str) -> tuple[Any, ...]:
    """An item's ``PLANNED_COLUMNS``."""
    body = call.body.decode() if call.body is not None else None
    return (index, call.method, call.path, call.headers, body, uuid.uuid4().hex if header else "")


def _header_name(name: str) -> str:
    from api_client.validation import clean_headers

    if not name:
        return ""
    try:
        clean_headers({name: "x"})
    except InvalidRequestError as exc:
        raise InvalidRequestError(
            f"The idempotency header {name!r} is not one that can be sent: {exc.message}",
            field="idempotency_header",
        ) from None
    return name


# --- where the calls come from ---------------------------------------------------------------


def line_limit(client: ApiClient) -> int:
    """The longest line of JSON Lines read: a body at its limit, and room for the rest."""
    return client.config.MAX_REQUEST_BYTES + ENVELOPE_ALLOWANCE


def json_lines(stream: BinaryIO, *, limit: int) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded object or a problem)`` for each non-blank line of ``stream``.

    At most ``limit`` + 1 bytes are held at a time: a longer line is a problem, skipped a
    chunk at a time, so that a 1 GB line costs no more memory than a short one."""
    from api_client.management.base import UnusableJSON, load_json

    number = 0
    while raw := stream.readline(limit + 1):
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while not raw.endswith(b"\n") and (raw := stream.readline(limit + 1)):
                pass
            yield (
                number,
                (
                    f"longer than {limit} bytes (POC_API_MAX_REQUEST_BYTES plus "
                    f"{ENVELOPE_ALLOWANCE} for the method, path, query and headers)."
                ),
            )
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, "not UTF-8 text."
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            value = load_json(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg} at column {exc.colno})."
            continue
        except UnusableJSON as exc:
            yield number, f"{exc}."
            continue
        if not isinstance(value, dict):
            yield number, 'expected an object such as {"method": "GET", "path": "items"}.'
            continue
        yield number, value


def data_rows(stream: BinaryIO, *, kind: str, limit: int) -> Iterator[tuple[int, Any]]:
    """The rows of a data file: ``kind`` is ``csv`` (a header row first) or ``jsonl``."""
    if kind == "jsonl":
        yield from json_lines(stream, limit=limit)
        return
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.DictReader(text)
        for row in reader:
            if None in row:
                yield reader.line_num, "the row has more cells than the header has columns."
                continue
            yield reader.line_num, row
    except (UnicodeDecodeError, csv.Error) as exc:
        yield 0, f"the data file cannot be read as CSV ({exc})."


def from_template(
    template: Mapping[str, Any], rows: Iterable[tuple[int, Any]]
) -> Iterator[tuple[int, Any]]:
    """Each row's request: ``template`` with its ``{{column}}`` placeholders filled."""
    for number, row in rows:
        if isinstance(row, str):
            yield number, row
            continue
        try:
            # A request's parts are text; only the JSON body keeps a row's types.
            yield number, {k: fill(v, row, typed=k == "json") for k, v in template.items()}
        except KeyError as exc:
            yield number, f"the row has no column {exc.args[0]!r}, which the template names."


def fill(value: Any, row: Mapping[str, Any], *, typed: bool = False) -> Any:
    """``value`` with ``{{column}}`` replaced from ``row``, in every string it holds; with
    ``typed``, a string that is one placeholder becomes the row's value as it is."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and typed:
            return row[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: _text(row[m.group(1)]), value)
    if isinstance(value, Mapping):
        return {fill(k, row): fill(v, row, typed=typed) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, row, typed=typed) for v in value]
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)

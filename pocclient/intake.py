"""Making a job from what a browser or a script posts, read as a stream.

``POST /api/batch`` and ``POST /api/jobs`` take the same bodies:

- JSON, ``{"requests": [...], "concurrency": N, "name": "...", "idempotency_header": "..."}``:
  the object is read member by member and the ``requests`` array one element at a time
  (``JsonBody``), so a body of 100,000 requests costs the memory of one;
- JSON Lines (``Content-Type: application/x-ndjson``), one request per line, the options in
  the query string;
- a form upload (``multipart/form-data``): a ``requests`` file of JSON Lines, or a request
  ``template`` and a ``data`` file (CSV with a header row, or JSON Lines of objects) whose rows
  fill the template's ``{{column}}`` placeholders; the options as form fields.

Every request is checked by the client before the job may run, and written in chunks as it is
read (``jobs.planning.plan``). A body with any bad request keeps nothing: the answer is a 400
that names each bad one (``requests[3].path: ...``, ``line 7: ...``), as the batch's always did.
"""

from __future__ import annotations

import codecs
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from django import forms
from django.core.exceptions import RequestDataTooBig
from django.db.models.signals import post_save
from django.http import HttpRequest

from api_client.client import ApiClient
from api_client.exceptions import InvalidRequestError
from api_client.management.base import UnusableJSON, load_json
from api_client.messages import ApiRequest, Call
from jobs import planning
from jobs.models import Job

from .forms import MAX_ITEM_ERRORS, prepare
from .jsonapi import BadInput, form_errors

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
OPTIONS = ("connection", "concurrency", "name", "idempotency_header")
OPTION_LIMIT = 64 * 1024  # characters of a member other than ``requests``
CHUNK = 64 * 1024
_WHITESPACE = " \t\n\r"

type Numbered = Iterable[tuple[str, Any]]  # (where it was read, a request or a problem)


class JobOptionsForm(forms.Form):
    """The job's settings, from the query string, the JSON body or the form fields."""

    concurrency = forms.IntegerField(required=False)
    name = forms.CharField(required=False, max_length=200)
    idempotency_header = forms.CharField(required=False, max_length=64)

    def __init__(self, *args: Any, client: ApiClient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def clean_concurrency(self) -> int:
        try:
            return self.client.concurrency(self.cleaned_data["concurrency"])
        except InvalidRequestError as exc:
            raise forms.ValidationError(exc.message, code="out_of_range") from None


def options_of(data: Mapping[str, Any], client: ApiClient) -> dict[str, Any]:
    form = JobOptionsForm(data={k: v for k, v in data.items() if v is not None}, client=client)
    if not form.is_valid():
        raise BadInput(form_errors(form))
    return {name: form.cleaned_data[name] for name in data}


# --- a JSON object, read as a stream ----------------------------------------------------------


class BodyError(Exception):
    """The body cannot be read on; ``field`` says which error it is (``__all__``: the body)."""

    def __init__(self, message: str, field: str = "__all__") -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class JsonBody:
    """A JSON object read from a binary stream one member at a time, and its ``requests``
    array one element at a time: at most one element (or one member) and a chunk are held.

    ``events()`` yields ``("member", name, text)`` for each member but the array,
    ``("requests", None, None)`` where the array starts, ``("request", index, text)`` for
    each element (``text`` is the JSON text of the value, decoded by the caller), and
    ``("not_a_list", None, text)`` when ``requests`` is not an array. It raises ``BodyError``
    where the body stops being JSON, or an element is longer than ``limit`` characters.
    """

    def __init__(self, stream: IO[bytes], *, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.decoder = json.JSONDecoder()
        self.text = ""
        self.pos = 0
        self.dropped = 0  # characters read before text[0], for error positions
        self.eof = False

    def events(self) -> Iterator[tuple[str, Any, str | None]]:
        char = self._next_char()
        if char is None:
            return  # an empty body: no members
        if char != "{":
            if char in '["-0123456789tfn':
                raise BodyError("The request body must be a JSON object.")
            raise self._syntax("Expecting value")
        self.pos += 1
        seen_requests = False
        if self._next_char() == "}":
            self.pos += 1
        else:
            while True:
                if self._next_char() != '"':
                    raise self._syntax("Expecting property name enclosed in double quotes")
                name = json.loads(self._value(OPTION_LIMIT, "a member's name"))
                if self._next_char() != ":":
                    raise self._syntax("Expecting ':' delimiter")
                self.pos += 1
                self._next_char()
                if name == "requests":
                    if seen_requests:
                        raise BodyError("requests is given twice.", field="requests")
                    seen_requests = True
                    if self._next_char() == "[":
                        self.pos += 1
                        yield "requests", None, None
                        yield from self._elements()
                    else:
                        yield "not_a_list", None, self._value(OPTION_LIMIT, "requests")
                else:
                    yield "member", name, self._value(OPTION_LIMIT, name)
                char = self._next_char()
                self.pos += 1
                if char == "}":
                    break
                if char != ",":
                    self.pos -= 1
                    raise self._syntax("Expecting ',' delimiter")
                self._next_char()
        if self._next_char() is not None:
            raise self._syntax("Extra data")

    def _elements(self) -> Iterator[tuple[str, Any, str | None]]:
        if self._next_char() == "]":
            self.pos += 1
            return
        index = 0
        while True:
            self._next_char()
            yield "request", index, self._value(self.limit, f"requests[{index}]")
            index += 1
            char = self._next_char()
            self.pos += 1
            if char == "]":
                return
            if char != ",":
                self.pos -= 1
                raise self._syntax("Expecting ',' delimiter")

    def _value(self, limit: int, what: str) -> str:
        """The JSON text of the value at ``pos`` (read on until it is whole), moving past it;
        ``what`` names it if it is longer than ``limit`` characters."""
        while True:
            try:
                _, end = self.decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self._syntax(exc.msg, exc.pos) from None
                if len(self.text) - self.pos > limit:
                    raise self._too_long(what, limit) from None
                self._fill()
                continue
            except RecursionError:
                raise BodyError("The request body is nested too deeply.") from None
            if end == len(self.text) and not self.eof:
                self._fill()  # a number at the end of what was read may go on
                continue
            if end - self.pos > limit:
                raise self._too_long(what, limit)
            text = self.text[self.pos : end]
            self.pos = end
            return text

    def _too_long(self, what: str, limit: int) -> BodyError:
        if what.startswith("requests["):
            return BodyError(
                f"{what}: longer than {limit} characters (POC_API_MAX_REQUEST_BYTES plus "
                f"{planning.ENVELOPE_ALLOWANCE} for the method, path, query and headers).",
                field="requests",
            )
        return BodyError(f"{what} is longer than {limit} characters.")

    def _next_char(self) -> str | None:
        """Skip whitespace; the next character, or None at the end of the body."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if self.eof:
                return None
            self._fill()

    def _fill(self) -> None:
        if self.pos > CHUNK:  # drop what was read, so the buffer holds one value and a chunk
            self.dropped += self.pos
            self.text, self.pos = self.text[self.pos :], 0
        chunk = self.stream.read(CHUNK)
        try:
            if chunk:
                self.text += self.utf8.decode(chunk)
            else:
                self.eof = True
                self.text += self.utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            raise BodyError("The request body is not UTF-8 text.") from None

    def _syntax(self, message: str, pos: int | None = None) -> BodyError:
        at = self.dropped + (self.pos if pos is None else pos)
        return BodyError(f"The request body is not valid JSON: {message} at character {at}.")


# --- where the requests come from ------------------------------------------------------------


class Intake:
    """What one POST asks for: the job's options and its numbered requests, read lazily.

    ``options`` are those known before the first request; ``late`` are those a JSON body
    gives after its ``requests`` (known once the requests have all been read)."""

    def __init__(self, connect: Callable[[Any], ApiClient], default_name: str) -> None:
        self._connect = connect
        self.client: ApiClient | None = None
        self.options: dict[str, Any] = {}
        self.late: dict[str, Any] = {}
        self.default_name = default_name
        self.requests: Numbered = ()
        self.field = "requests"  # where problems with the requests are reported
        self.noun = "requests"

    def add_options(
        self, data: Mapping[str, Any], *, late: bool = False, fields: tuple[str, ...] = ()
    ) -> None:
        unknown = sorted(name for name in data if name not in OPTIONS)
        if unknown:
            known = ", ".join(fields or ("requests", *OPTIONS))
            raise BadInput({"__all__": [f"Unknown field(s): {', '.join(unknown)}; use {known}."]})
        target = self.late if late else self.options
        for name, value in data.items():
            if name in self.options or name in self.late:
                raise BadInput({name: [f"{name} is given twice."]})
            target[name] = value

    def connect(self) -> int:
        """Choose the client from the ``connection`` option, which must come before the
        requests (they are checked against it); the longest line its requests may take."""
        self.client = self._connect(self.options.pop("connection", None))
        return planning.line_limit(self.client)


def read_intake(
    request: HttpRequest, connect: Callable[[Any], ApiClient], *, default_name: str
) -> Intake:
    """The options and requests ``request`` carries (see the module docstring); the body is
    read as the requests are iterated, up to the first request before this returns.
    ``connect`` turns the ``connection`` option (``None`` when absent) into the client."""
    intake = Intake(connect, default_name)
    intake.add_options(dict(request.GET.items()))
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        _read_form(request, intake)
    elif content_type in NDJSON_TYPES:
        limit = intake.connect()
        intake.requests = _lines(planning.json_lines(request, limit=limit), "line")
    else:
        _read_json(request, intake)
    intake.options = options_of(intake.options, intake.client)
    return intake


def _lines(rows: Iterable[tuple[int, Any]], noun: str) -> Numbered:
    for number, value in rows:
        yield f"{noun} {number}", value


def _read_json(request: HttpRequest, intake: Intake) -> None:
    body = JsonBody(request, limit=OPTION_LIMIT)
    events = body.events()
    before: dict[str, Any] = {}
    found = False
    try:
        for kind, name, text in events:
            if kind == "member":
                before[name] = _option_value(name, text)
            elif kind == "not_a_list":
                raise BadInput({"requests": ["Give a non-empty list of requests."]})
            elif kind == "requests":
                found = True
                break
    except BodyError as exc:
        raise BadInput({exc.field: [exc.message]}) from None
    intake.add_options(before)
    if not found:
        raise BadInput({"requests": ["This field is required."]})
    body.limit = intake.connect()

    def elements() -> Numbered:
        after: dict[str, Any] = {}
        try:
            for kind, name, text in events:
                if kind == "request":
                    yield f"requests[{name}]", _element(text)
                elif kind == "member":
                    after[name] = _option_value(name, text)
        except BodyError as exc:
            raise BadInput({exc.field: [exc.message]}) from None
        intake.add_options(after, late=True)

    intake.requests = elements()


def _option_value(name: str, text: str | None) -> Any:
    try:
        return load_json(text or "null")
    except UnusableJSON as exc:
        raise BadInput({name if name in OPTIONS else "__all__": [f"{name}: {exc}."]}) from None


def _element(text: str | None) -> Any:
    try:
        value = load_json(text or "null")
    except UnusableJSON as exc:
        return f"{exc}."
    if not isinstance(value, dict):
        return "each request must be a JSON object."
    return value


def _read_form(request: HttpRequest, intake: Intake) -> None:
    try:
        fields, files = request.POST, request.FILES
    except RequestDataTooBig:
        raise BadInput(
            {"__all__": ["The form's fields are too large (DATA_UPLOAD_MAX_MEMORY_SIZE)."]},
            status=413,
        ) from None
    known = {"requests", "template", "data", "data_format", "csrfmiddlewaretoken"}
    intake.add_options(
        {k: v for k, v in fields.items() if k not in known},
        fields=("requests", "template", "data", "data_format", *OPTIONS),
    )
    unknown_files = sorted(name for name in files if name not in known)
    if unknown_files:
        raise BadInput(
            {"__all__": [f"Unknown file(s): {', '.join(unknown_files)}; use requests or data."]}
        )
    limit = intake.connect()
    if "requests" in files:
        if "template" in fields or "template" in files or "data" in files:
            raise BadInput(
                {"__all__": ["Give a requests file, or a template and a data file, not both."]}
            )
        upload = files["requests"]
        intake.default_name = upload.name[:200]
        intake.requests = _lines(planning.json_lines(upload, limit=limit), "line")
        return
    template = _template(fields, files, limit)
    if "data" not in files:
        raise BadInput({"data": ["Upload a data file (CSV with a header row, or JSON Lines)."]})
    upload = files["data"]
    kind = fields.get("data_format") or (
        "jsonl" if upload.name.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"
    )
    if kind not in ("csv", "jsonl"):
        raise BadInput({"data_format": ["Use csv or jsonl."]})
    method, path = template.get("method", "GET"), template.get("path", "")
    intake.default_name = f"{upload.name} into {method} {path}"[:200]
    intake.field, intake.noun = "data", "rows"
    rows = planning.data_rows(upload, kind=kind, limit=limit)
    intake.requests = _lines(planning.from_template(template, rows), "data line")


def _template(fields: Mapping[str, Any], files: Mapping[str, Any], limit: int) -> dict:
    if "template" in files:
        raw = files["template"].read(limit + 1)
        if len(raw) > limit:
            raise BadInput({"template": [f"The template is longer than {limit} bytes."]})
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadInput({"template": ["The template is not UTF-8 text."]}) from None
    elif fields.get("template"):
        text = fields["template"]
    else:
        raise BadInput(
            {"template": ["Give a request template: a JSON object such as "
                          '{"method": "PUT", "path": "items/{{id}}"}, or a requests file.']}
        )  # fmt: skip
    try:
        template = load_json(text)
    except (json.JSONDecodeError, UnusableJSON) as exc:
        raise BadInput({"template": [f"The template is not valid JSON: {exc}."]}) from None
    if not isinstance(template, dict):
        raise BadInput({"template": ["The template must be a JSON object."]})
    unknown = sorted(str(key) for key in template if key not in ApiRequest.FIELDS)
    if unknown:
        raise BadInput(
            {
                "template": [
                    f"Unknown field(s): {', '.join(unknown)}; use {', '.join(ApiRequest.FIELDS)}."
                ]
            }
        )
    return template


# --- checked, then planned -------------------------------------------------------------------


def make_job(intake: Intake, *, origin: str = Job.Origin.CONSOLE) -> Job:
    """Plan ``intake``'s requests as a job (every one checked, written in chunks); raise
    ``BadInput`` naming each bad request, or the options, with nothing kept."""
    client = intake.client
    options = intake.options
    with job_made_here() as made:
        checked = _checked(intake, lambda: _apply_late(intake, made))
        try:
            job = planning.plan(
                client,
                checked,
                name=options.get("name") or intake.default_name,
                origin=origin,
                concurrency=options.get("concurrency"),
                idempotency_header=options.get("idempotency_header") or "",
            )
        except InvalidRequestError as exc:  # the job's own settings
            raise BadInput({exc.field or "__all__": [exc.message]}) from None
    job.refresh_from_db()
    return job


def _checked(intake: Intake, at_end: Callable[[], None]) -> Iterator[tuple[str, Any]]:
    """``intake``'s requests as checked calls for ``plan``; problems are gathered here (named
    as the batch always named them) and raised as one ``BadInput`` at the end. ``plan`` is
    told of the first one only, which stops it writing: it deletes the job when this raises."""
    client, cap = intake.client, intake.client.config.BATCH_MAX
    problems: list[str] = []
    count = 0
    for where, value in intake.requests:
        count += 1
        if count > cap:
            raise BadInput(
                {
                    intake.field: [
                        f"The batch has more than {cap} {intake.noun}; at most {cap} are "
                        "allowed (POC_API_BATCH_MAX). Nothing was kept."
                    ]
                }
            )
        call, problem = _check(client, where, value)
        if call is not None:
            if not problems:
                yield where, call
            continue
        if not problems:
            yield where, problem  # plan stops writing; what it wrote is deleted with the job
        problems.append(problem)
    if problems:
        shown = problems[:MAX_ITEM_ERRORS]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more.")
        summary = f"{len(problems)} of the {count} {intake.noun} are invalid."
        raise BadInput({intake.field: [summary, *shown]})
    if not count:
        raise BadInput({intake.field: [f"Give a non-empty list of {intake.noun}."]})
    at_end()


def _check(client: ApiClient, where: str, value: Any) -> tuple[Call | None, str]:
    """The request read at ``where`` as a checked call, or why it cannot be sent."""
    if isinstance(value, str):
        return None, f"{where}: {value}"
    if not isinstance(value, dict):
        return None, f"{where}: each request must be a JSON object."
    unknown = sorted(str(key) for key in value if key not in ApiRequest.FIELDS)
    if unknown:
        fields = ", ".join(ApiRequest.FIELDS)
        return None, f"{where}: Unknown field(s): {', '.join(unknown)}; use {fields}."
    try:
        return prepare(client, value), ""
    except InvalidRequestError as exc:
        if not exc.field:
            return None, f"{where}: {exc.message}"
        # requests[3].path (the JSON body's place), line 7, path (a line's)
        joiner = "." if where.endswith("]") else ", "
        return None, f"{where}{joiner}{exc.field}: {exc.message}"


def _apply_late(intake: Intake, made: list[Job]) -> None:
    """Options a JSON body gives after its requests: checked, and set on the job before it
    may run (``plan`` made it, in this thread, before it read the first request)."""
    if not intake.late:
        return
    if "idempotency_header" in intake.late:
        raise BadInput(
            {
                "idempotency_header": [
                    "Put idempotency_header before requests in the body: each request's key "
                    "is fixed as it is planned."
                ]
            }
        )
    if "connection" in intake.late:
        raise BadInput(
            {
                "connection": [
                    "Put connection before requests in the body: each request is checked "
                    "against its connection as it is read."
                ]
            }
        )
    late = options_of(intake.late, intake.client)
    changes = {}
    if "concurrency" in late:
        changes["concurrency"] = late["concurrency"]
    if late.get("name"):
        changes["name"] = late["name"]
    if changes and made:
        Job.objects.filter(pk=made[0].pk).update(**changes)


@contextmanager
def job_made_here() -> Iterator[list[Job]]:
    """The job that ``plan`` makes in this thread, as soon as it is made (``plan`` keeps it to
    itself until it has read every request, and a JSON body may give its options last)."""
    made: list[Job] = []
    thread = threading.get_ident()

    def remember(sender: type[Job], instance: Job, created: bool, **kwargs: Any) -> None:
        if created and not made and threading.get_ident() == thread:
            made.append(instance)

    uid = f"pocclient.intake.{thread}.{id(made)}"
    post_save.connect(remember, sender=Job, weak=False, dispatch_uid=uid)
    try:
        yield made
    finally:
        post_save.disconnect(sender=Job, dispatch_uid=uid)

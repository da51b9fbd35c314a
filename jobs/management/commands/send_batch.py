import sys
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import CommandError, CommandParser

from api_client.client import ApiClient
from api_client.exceptions import InvalidRequestError
from api_client.management.base import ApiCommand, bad_input, load_json, plural
from jobs.models import Job
from jobs.planning import PlanningError, data_rows, from_template, json_lines, line_limit, plan
from jobs.tasks import start
from jobs.workers import no_worker_warning

from ._common import (
    INTERRUPTED,
    clean,
    failing_items,
    failure,
    follow,
    interrupted,
    summary,
)

DATA_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class Command(ApiCommand):
    help = (
        "Make a job of many requests, read as JSON Lines from FILE or standard input (or one "
        "request template filled from each row of a data file), and follow it to a summary."
    )
    examples = """\
        %(prog)s requests.jsonl
        %(prog)s requests.jsonl --concurrency 4 --name "nightly sync"
        printf '%%s\\n' '{"method": "GET", "path": "whoami"}' | %(prog)s -
        %(prog)s template.json --data learners.csv
        %(prog)s requests.jsonl --detach        # the job id is the last line
    """
    notes = """\
    Each line is one request: {"method": "POST", "path": "items", "query": {"a": "1"},
    "headers": {"X-Trace": "t"}, "json": {"name": "widget"}}; only "path" is required (""
    is the base URL itself) and "method" defaults to GET. With --data, FILE is instead one
    such request (any layout) whose strings hold {{column}} placeholders, filled from each
    row of the data file (CSV with a header row, or JSON Lines of objects); a JSON value that
    is exactly "{{column}}" takes the row's value as it is.

    Every call is checked and written to the database (a job) before any is sent: a
    malformed line (or one longer than POC_API_MAX_REQUEST_BYTES plus 64 KiB) is reported
    with its number and nothing is planned or sent (exit status 2). Workers (manage.py
    db_worker, or the web server's own) run the job; when none is running, this command
    sends the calls itself. Ctrl-C stops following, not the job: show_job follows it again,
    cancel_job stops it. Its exchanges carry the job's key as their batch id.

    Exit status: 0 when every request was answered below 400, 1 when any failed (400 or
    more, no answer, unknown) or was cancelled, 2 on bad arguments or input, 130 when
    interrupted (the job goes on).
    """

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "source",
            metavar="FILE|-",
            help="JSON Lines of requests, or - for stdin; with --data, the request template.",
        )
        parser.add_argument(
            "--data",
            metavar="FILE|-",
            help="A data file (CSV with a header row, or JSON Lines of objects) whose rows "
            "fill the template's {{column}} placeholders: one request per row.",
        )
        parser.add_argument(
            "--data-format",
            choices=("csv", "jsonl"),
            help="How --data is written (default: from its name: .csv, or .jsonl/.ndjson/.json).",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            metavar="N",
            help="How many requests run at once (default and maximum: POC_API_MAX_WORKERS).",
        )
        parser.add_argument(
            "--idempotency-header",
            metavar="NAME",
            default="",
            help="Send each request with this header and a key of its own, fixed now, so that "
            "a call that may have reached the API is sent again safely after a crash "
            "(default: none).",
        )
        parser.add_argument(
            "--name",
            default="",
            help="The job's name, shown in the admin (default: the file's name).",
        )
        parser.add_argument(
            "--detach",
            action="store_true",
            help="Plan the job and leave it to the workers; print its id on the last line.",
        )

    def handle(
        self,
        *,
        source: str,
        data: str | None,
        data_format: str | None,
        concurrency: int | None,
        idempotency_header: str,
        name: str,
        detach: bool,
        **options: Any,
    ) -> None:
        client = self.client()
        try:
            concurrency = client.concurrency(concurrency)
        except InvalidRequestError as exc:
            # "Concurrency must be ... (SETTING)." -> "--concurrency must be ...; got 0."
            reason = exc.message.removeprefix("Concurrency ").rstrip(".")
            raise bad_input(f"--concurrency {reason}; got {concurrency}.") from None
        if data is not None and source == "-" and data == "-":
            raise bad_input("FILE and --data cannot both be standard input.")
        kind = data_kind(data, data_format) if data is not None else ""
        shown = display_name(data if data is not None else source)
        origin = f"{display_name(source)} with {shown}" if data is not None else shown
        with ExitStack() as files:
            limit = line_limit(client)
            first = files.enter_context(opened(source))
            if data is None:
                requests = json_lines(first, limit=limit)
            else:
                template = read_template(first, source, limit)
                rows = data_rows(files.enter_context(opened(data)), kind=kind, limit=limit)
                requests = from_template(template, rows)
            job = self.plan(
                client,
                requests,
                shown,
                name=name or origin,
                concurrency=concurrency,
                idempotency_header=idempotency_header,
            )
        if not job.total:
            job.delete()
            self.stdout.write(f"No requests in {shown}; nothing was sent.")
            return
        start(job)
        self.stdout.write(f"Planned job {job.key}: {plural(job.total, 'call')} from {origin}.")
        if detach:
            self.detach(job)
        else:
            self.follow(job)

    def plan(self, client: ApiClient, requests: Any, shown: str, **options: Any) -> Job:
        try:
            return plan(client, requests, origin=Job.Origin.COMMAND, **options)
        except OSError as exc:
            raise bad_input(f"Cannot read {shown}: {exc.strerror or exc}.") from None
        except InvalidRequestError as exc:  # the job's own settings
            raise bad_input(exc.message) from None
        except KeyboardInterrupt:  # planning deleted what it had written
            raise CommandError(
                "Interrupted while planning; nothing was kept or sent.", returncode=INTERRUPTED
            ) from None
        except PlanningError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            if exc.count > len(exc.problems):
                self.stderr.write(f"... and {exc.count - len(exc.problems)} more.")
            raise bad_input(
                f"{plural(exc.count, 'malformed line')} in {shown}; nothing was sent."
            ) from None

    def detach(self, job: Job) -> None:
        if warning := no_worker_warning():
            self.stderr.write(f"Warning: {warning}")
        self.stdout.write(
            f"It runs in the background: `manage.py show_job {job.key} --wait` follows it, "
            f"`manage.py cancel_job {job.key}` stops it."
        )
        self.stdout.write(job.key)

    def follow(self, job: Job) -> None:
        try:
            job, snapshot = follow(job, self.stdout, self.stderr, lend_a_hand=True)
        except KeyboardInterrupt:
            raise interrupted(job) from None
        for line in failing_items(job):
            self.stdout.write(line)
        self.stdout.write("\n".join(summary(job, snapshot)))
        if not clean(job, snapshot):
            raise failure(job, snapshot)


def opened(source: str) -> AbstractContextManager[BinaryIO]:
    """The file, or standard input (left open); exit status 2 when it cannot be opened."""
    if source == "-":
        return nullcontext(sys.stdin.buffer)
    try:
        return Path(source).open("rb")
    except OSError as exc:
        raise bad_input(f"Cannot read {source}: {exc.strerror}.") from None


def read_template(stream: BinaryIO, source: str, limit: int) -> dict[str, Any]:
    """The request template: one JSON object, no larger than a line may be."""
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise bad_input(f"The template {display_name(source)} is larger than {limit} bytes.")
    try:
        template = load_json(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise bad_input(f"The template {display_name(source)} is not UTF-8 text.") from None
    except ValueError as exc:  # json.JSONDecodeError, UnusableJSON
        reason = f"{exc.msg} at line {exc.lineno}" if hasattr(exc, "msg") else str(exc)
        raise bad_input(
            f"The template {display_name(source)} is not valid JSON ({reason})."
        ) from None
    if not isinstance(template, dict):
        raise bad_input(
            f"The template {display_name(source)} must be one request, an object such as "
            '{"method": "GET", "path": "items/{{id}}"}.'
        )
    return template


def data_kind(data: str, data_format: str | None) -> str:
    if data_format:
        return data_format
    kind = DATA_FORMATS.get(Path(data).suffix.lower()) if data != "-" else None
    if kind is None:
        raise bad_input(
            f"Cannot tell how {display_name(data)} is written: give --data-format csv or jsonl."
        )
    return kind


def display_name(source: str) -> str:
    return "standard input" if source == "-" else source

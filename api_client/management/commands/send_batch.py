import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import CommandError, CommandParser, OutputWrapper

from api_client.client import ApiClient, get_client
from api_client.exceptions import InvalidRequestError
from api_client.management.base import ApiCommand, UnusableJSON, bad_input, load_json, plural
from api_client.messages import BatchResult, Call
from api_client.metrics import percentile

MAX_REPORTED_PROBLEMS = 20
BAR_WIDTH = 30
# A line may exceed the body limit by this much: its method, path, query and headers.
ENVELOPE_ALLOWANCE = 64 * 1024


def read_lines(stream: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Each line of ``stream``, or None for a line longer than ``limit`` bytes (its newline
    aside). At most ``limit`` + 1 bytes are held at a time: a long line is skipped a chunk at
    a time, so that a 1 GB line costs no more memory than a short one."""
    while line := stream.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        yield None
        while not line.endswith(b"\n") and (line := stream.readline(limit + 1)):
            pass


def line_limit(client: ApiClient) -> int:
    return client.config.MAX_REQUEST_BYTES + ENVELOPE_ALLOWANCE


def parse_requests(
    lines: Iterable[bytes | None], client: ApiClient
) -> tuple[list[tuple[int, Call]], list[str]]:
    """``([(line number, call), ...], [problem, ...])``; problems name their line."""
    requests: list[tuple[int, Call]] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, 1):
        if raw is None:
            problems.append(
                f"line {number}: longer than {line_limit(client)} bytes "
                f"(POC_API_MAX_REQUEST_BYTES plus {ENVELOPE_ALLOWANCE} for the method, path, "
                "query and headers)."
            )
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"line {number}: not UTF-8 text.")
            continue
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            item = load_json(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        except UnusableJSON as exc:
            problems.append(f"line {number}: {exc}.")
            continue
        if not isinstance(item, dict):
            problems.append(
                f'line {number}: expected an object such as {{"method": "GET", "path": "items"}}.'
            )
            continue
        try:
            requests.append((number, client.prepare(item)))
        except InvalidRequestError as exc:
            problems.append(f"line {number}: {exc.message}")
    return requests, problems


def describe(result: BatchResult) -> str:
    request = result.request
    what = f"{str(request.method).upper()} {request.path}"  # type: ignore[union-attr]
    if result.response is not None:
        return f"{result.response.status} {what} ({result.response.duration_ms:.1f} ms)"
    message = " ".join(str(getattr(result.error, "message", result.error)).split())
    return f"{result.outcome} {what}: {message}"


class Progress:
    """A bar redrawn in place on a terminal; one plain line per result otherwise."""

    def __init__(self, out: OutputWrapper, total: int) -> None:
        self.out = out
        self.total = total
        self.done = 0
        self.failed = 0
        self.bar = out.isatty()

    def update(self, line_number: int, result: BatchResult) -> None:
        self.done += 1
        self.failed += not result.ok
        if not self.bar:
            self.out.write(f"line {line_number}: {describe(result)}")
            return
        if not result.ok:  # failures stay on screen above the bar
            self.out.write(f"\r\x1b[2Kline {line_number}: {describe(result)}")
        filled = BAR_WIDTH * self.done // self.total
        failed = f"  {self.failed} failed" if self.failed else ""
        self.out.write(
            f"\r\x1b[2K[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total}"
            + failed,
            ending="",
        )
        self.out.flush()

    def finish(self) -> None:
        if self.bar:
            self.out.write("\r\x1b[2K", ending="")


def summary(results: list[BatchResult], seconds: float, batch_id: str) -> list[str]:
    counts = Counter(r.outcome for r in results)
    failed = sum(not r.ok for r in results)
    durations = [r.response.duration_ms for r in results if r.response is not None]
    p50, p95 = percentile(durations, 50), percentile(durations, 95)
    by_status = ", ".join(f"{name} x {count}" for name, count in sorted(counts.items()))
    latency = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms" if durations else "no answers"
    return [
        f"Sent {plural(len(results), 'request')} in {seconds:.2f} s (batch {batch_id}): "
        f"{len(results) - failed} succeeded, {failed} failed.",
        f"By status: {by_status or 'none'}.",
        f"Latency: {latency}.",
    ]


class Command(ApiCommand):
    help = (
        "Send many requests, read as JSON Lines from FILE or standard input, concurrently "
        "through api_client, and print a summary (counts by status, p50/p95 latency)."
    )
    examples = """\
        %(prog)s requests.jsonl
        %(prog)s requests.jsonl --concurrency 4
        printf '%%s\\n' '{"method": "GET", "path": "whoami"}' | %(prog)s -
    """
    notes = """\
    Each line is one request: {"method": "POST", "path": "items", "query": {"a": "1"},
    "headers": {"X-Trace": "t"}, "json": {"name": "widget"}}; only "path" is required (""
    is the base URL itself) and "method" defaults to GET. Every line is checked before
    anything is sent: a malformed line (or one longer than POC_API_MAX_REQUEST_BYTES plus
    64 KiB) is reported with its number and nothing is sent (exit status 2). The exchanges
    of one run share a batch id, shown in the summary; filter the admin's exchanges by it.
    Exit status: 0 when every request answered below 400, 1 when any failed, 2 on bad
    arguments or input.
    """

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", metavar="FILE|-", help="JSON Lines file, or - for stdin.")
        parser.add_argument(
            "--concurrency",
            type=int,
            metavar="N",
            help="How many requests run at once (default and maximum: POC_API_MAX_WORKERS).",
        )

    def handle(self, *, source: str, concurrency: int | None, **options: Any) -> None:
        client = get_client()
        try:
            concurrency = client.concurrency(concurrency)
        except InvalidRequestError as exc:
            # "Concurrency must be ... (SETTING)." -> "--concurrency must be ...; got 0."
            reason = exc.message.removeprefix("Concurrency ").rstrip(".")
            raise bad_input(f"--concurrency {reason}; got {concurrency}.") from None
        try:
            with nullcontext(sys.stdin.buffer) if source == "-" else Path(source).open("rb") as f:
                numbered, problems = parse_requests(read_lines(f, line_limit(client)), client)
        except OSError as exc:
            raise bad_input(f"Cannot read {display_name(source)}: {exc.strerror}.") from None
        if problems:
            for problem in problems[:MAX_REPORTED_PROBLEMS]:
                self.stderr.write(problem)
            if len(problems) > MAX_REPORTED_PROBLEMS:
                self.stderr.write(f"... and {len(problems) - MAX_REPORTED_PROBLEMS} more.")
            count = plural(len(problems), "malformed line")
            raise bad_input(f"{count} in {display_name(source)}; nothing was sent.")
        if not numbered:
            self.stdout.write(f"No requests in {display_name(source)}; nothing was sent.")
            return
        self.send(client, numbered, concurrency)

    def send(self, client: ApiClient, numbered: list[tuple[int, Call]], concurrency: int) -> None:
        batch_id = uuid.uuid4().hex
        progress = Progress(self.stdout, len(numbered))
        results: list[BatchResult] = []
        started = time.perf_counter()
        try:
            for result in client.iter_many(
                [request for _, request in numbered], concurrency=concurrency, batch_id=batch_id
            ):
                results.append(result)
                progress.update(numbered[result.index][0], result)
        except KeyboardInterrupt:
            progress.finish()
            elapsed = time.perf_counter() - started
            self.stdout.write("\n".join(summary(results, elapsed, batch_id)))
            raise CommandError(
                f"Interrupted after {len(results)} of {plural(len(numbered), 'request')}.",
                returncode=130,
            ) from None
        progress.finish()
        self.stdout.write("\n".join(summary(results, time.perf_counter() - started, batch_id)))
        failed = sum(not r.ok for r in results)
        if failed:
            raise CommandError(
                f"{failed} of {plural(len(results), 'request')} failed; the admin lists "
                f"{'it' if failed == 1 else 'them'} under batch {batch_id}."
            )


def display_name(source: str) -> str:
    return "standard input" if source == "-" else source

import json
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from api_client.client import ApiResponse
from api_client.exceptions import ApiError, InvalidRequestError
from api_client.management.base import ApiCommand, UnusableJSON, bad_input, load_json, plural
from api_client.redaction import redact_headers, scrub
from api_client.validation import METHODS


def read_data(value: str, *, limit: int) -> Any:
    """The JSON body given to ``--data``: inline, ``@FILE``, or ``@-`` for standard input.

    A file (or standard input) is read no further than ``limit`` + 1 bytes: one larger than the
    body limit is refused without reading it all, however large it is.
    """
    source = "--data"
    if value.startswith("@"):
        name = value[1:]
        source = "--data from standard input" if name == "-" else f"--data file {name}"
        try:
            if name == "-":
                raw = sys.stdin.buffer.read(limit + 1)
            else:
                with Path(name).open("rb") as stream:
                    raw = stream.read(limit + 1)
        except OSError as exc:
            raise bad_input(f"Cannot read --data file {name}: {exc.strerror}.") from None
        if len(raw) > limit:
            raise bad_input(
                f"{source} is larger than {limit} bytes (POC_API_MAX_REQUEST_BYTES); "
                "nothing was sent."
            )
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_input(f"{source} is not UTF-8 text.") from None
    try:
        data = load_json(value)
    except UnusableJSON as exc:
        raise bad_input(f"{source}: {exc}; nothing was sent.") from None
    except ValueError as exc:
        raise bad_input(f"{source} is not valid JSON: {exc}.") from None
    if data is None:
        raise bad_input(f"{source} is null; leave --data out to send no body.")
    return data


def parse_query(items: list[str]) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise bad_input(f"--query {item!r} is not NAME=VALUE.")
        query.setdefault(name, []).append(value)
    return query


def parse_headers(items: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise bad_input(f"--header {item!r} is not NAME:VALUE.")
        headers[name.strip()] = value.strip()
    return headers


def status_line(response: ApiResponse, request_id: str) -> str:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    attempts = plural(response.attempts, "attempt")
    exchange = f"exchange {response.exchange_id}, " if response.exchange_id else ""
    return (
        f"HTTP {response.status} {reason}".rstrip()
        + f"  ({response.method} {response.path}, {response.duration_ms:.1f} ms, {attempts}, "
        + f"{exchange}request id {request_id})"
    )


def pretty_body(response: ApiResponse) -> str:
    data = response.data()
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return json.dumps(data, indent=2, ensure_ascii=False)


class Command(ApiCommand):
    help = (
        "Send one request to the API through api_client (token, retries, exchange log) and "
        "print the status line and the body as pretty JSON."
    )
    examples = """\
        %(prog)s GET whoami
        %(prog)s GET items --query limit=10 --query tag=a --query tag=b
        %(prog)s POST items --data '{"name": "widget"}' --fail
        %(prog)s PUT items/3 --data @item.json --header 'If-Match: "v2"'
        echo '{"name": "gadget"}' | %(prog)s POST items --data @-
        %(prog)s GET items -v 0 | jq .          # the body only
        %(prog)s GET items -v 2                 # the response headers too
    """
    notes = """\
    Exit status: 0 when an answer came (whatever its status, unless --fail), 1 when the API
    could not be reached or, with --fail, answered 400 or more, 2 on bad arguments (nothing
    is sent then).
    """

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("method", help=f"One of {', '.join(METHODS)}.")
        parser.add_argument(
            "path", help="A path below POC_API_BASE_URL, e.g. items/3 (a query string may follow)."
        )
        parser.add_argument(
            "--data",
            metavar="JSON|@FILE",
            help="The JSON body: inline, read from FILE with @FILE, or from standard input "
            "with @- (at most POC_API_MAX_REQUEST_BYTES bytes).",
        )
        parser.add_argument(
            "--query",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A query parameter; repeat for more (a name may repeat).",
        )
        parser.add_argument(
            "--header",
            action="append",
            default=[],
            metavar="NAME:VALUE",
            help="A request header; repeat for more.",
        )
        parser.add_argument(
            "--fail",
            action="store_true",
            help="Exit with status 1 when the API answers 400 or more (the answer is still "
            "printed).",
        )

    def handle(
        self,
        *,
        method: str,
        path: str,
        data: str | None,
        query: list[str],
        header: list[str],
        fail: bool,
        verbosity: int,
        **options: Any,
    ) -> None:
        client = self.client()
        body = None if data is None else read_data(data, limit=client.config.MAX_REQUEST_BYTES)
        try:
            response = client.request(
                method, path, query=parse_query(query), headers=parse_headers(header), json=body
            )
        except InvalidRequestError as exc:
            raise bad_input(f"{exc.message} Nothing was sent.") from exc
        except ApiError as exc:
            where = f" (exchange {exc.exchange_id})" if exc.exchange_id else ""
            raise CommandError(" ".join(exc.message.split()) + where) from exc

        # Output may land in a cron mail or a log: scrub what the API echoes of our secrets.
        secrets = client.tokens.held_secrets()
        if verbosity >= 1:
            self.stdout.write(status_line(response, self.request_id))
        if verbosity >= 2:
            for name, value in redact_headers(response.headers).items():
                self.stdout.write(f"{name}: {scrub(value, secrets)}")
            self.stdout.write("")
        text = scrub(pretty_body(response), secrets)
        if text:
            self.stdout.write(text)
        if fail and not response.ok:
            raise CommandError(f"The API answered {response.status} (--fail).")

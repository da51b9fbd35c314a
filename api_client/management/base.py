"""What api_client's commands share: a request id per run, help with examples, exit statuses.

Exit statuses: 0 on success; 1 when the work failed (the API could not be reached, or
answered with an error where the command promises to fail on one) or could not start (a
database that was never migrated is the environment's fault, not the input's); 2 on bad
arguments or bad input, whether argparse or the command found it, in which case nothing was
sent.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.base import DjangoHelpFormatter as _DjangoHelpFormatter
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from api_client.context import actor_scope, is_well_formed, request_id_scope
from api_client.models.connections import DEFAULT, NAME_RULE, is_name

if TYPE_CHECKING:
    from api_client.client import ApiClient

BAD_INPUT = 2


class _HelpFormatter(_DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's (base options last), keeping the examples' line breaks."""


def bad_input(message: str) -> CommandError:
    """A ``CommandError`` that exits with status 2, as argparse does for bad arguments."""
    return CommandError(message, returncode=BAD_INPUT)


def plural(count: int, noun: str, plural_noun: str = "") -> str:
    """``"1 request"``, ``"2 requests"``: a count and its noun, agreeing."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"


class UnusableJSON(ValueError):
    """Well-formed JSON that has no sane Python value: ``str()`` says why, in lower case."""


def _shown(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:20]}..."


def _parse_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):  # 1e999: JSON allows it, no API can read it
        raise UnusableJSON(f"the number {_shown(literal)} is out of range")
    return value


def _parse_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        raise UnusableJSON(
            f"the number {_shown(literal)} has {len(literal.lstrip('-'))} digits; at most "
            f"{sys.get_int_max_str_digits()} are allowed"
        ) from None


def _refuse_constant(name: str) -> None:
    raise UnusableJSON(f"{name} is not a JSON value (write null or a string)")


def load_json(text: str) -> Any:
    """``text`` as strict JSON. Raises ``json.JSONDecodeError`` for bad syntax, and
    ``UnusableJSON`` for what Python's decoder would accept but the API should never get:
    NaN and Infinity, numbers out of float range or too long for ``int``, and nesting deeper
    than the decoder's stack."""
    try:
        return json.loads(
            text, parse_float=_parse_float, parse_int=_parse_int, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise UnusableJSON("it is nested too deeply") from None


def check_database(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Raise a one-line ``CommandError`` unless the tables of every installed model exist.

    One query (the list of tables). Without it, a database that was never migrated fails deep
    inside the first query, where the token manager reads it as "busy" and the exchange log
    prints a traceback for a call it could not record.
    """
    connection = connections[alias]
    try:
        existing = set(connection.introspection.table_names())
    except DatabaseError as exc:
        raise CommandError(f"Cannot open the database: {' '.join(str(exc).split())}.") from exc
    introspection = connection.introspection
    wanted = {introspection.identifier_converter(t) for t in introspection.django_table_names()}
    missing = sorted(wanted - existing)
    if not missing:
        return
    if len(missing) == len(wanted):
        raise CommandError("The database has no tables yet; run `manage.py migrate` first.")
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    raise CommandError(
        f"The database lacks {plural(len(missing), 'table')} ({shown}); "
        "run `manage.py migrate` first."
    )


def connection_name(value: str) -> str:
    if not is_name(value):
        raise argparse.ArgumentTypeError(f"a connection name has {NAME_RULE}")
    return value


def request_id(value: str) -> str:
    if not is_well_formed(value):
        raise argparse.ArgumentTypeError(
            "use 1 to 64 letters, digits and . _ : - (starting with a letter or digit)"
        )
    return value


class ApiCommand(BaseCommand):
    """A command whose run has its own request id.

    The id (``--request-id``, or a new one) is current while the command runs: it is sent as
    ``X-Request-ID`` on every call, stored on every exchange the run causes, and shown in every
    log line. ``--connection`` chooses the connection (``client()``). Subclasses set ``help``
    (one sentence), and ``examples`` (command lines) and ``notes`` (paragraphs), which
    ``--help`` shows after the options. Before ``handle`` runs, the database must have its
    tables (``check_database``).
    """

    examples: str = ""
    notes: str = ""
    request_id: str = ""
    connection: str | None = None  # --connection, None when not given

    def client(self) -> ApiClient:
        """The client of ``--connection`` (default: ``default``); exit status 2 when there is
        no usable connection of that name."""
        from api_client.client import get_client
        from api_client.connections import UnknownConnectionError

        try:
            return get_client(self.connection or DEFAULT)
        except UnknownConnectionError as exc:
            raise bad_input(f"{exc.message} Nothing was sent.") from None

    @property
    def name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        epilog = ""
        if self.examples:
            epilog = "examples:\n" + textwrap.indent(textwrap.dedent(self.examples), "  ")
        if self.notes:
            epilog += "\n" + textwrap.dedent(self.notes)
        if epilog:
            kwargs.setdefault("epilog", epilog)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Raw formatting keeps the examples' lines; wrap the one-sentence help by hand.
        parser.description = textwrap.fill(self.help, 79) if self.help else None
        parser.add_argument(
            "--request-id",
            type=request_id,
            metavar="ID",
            help="The request id of this run (default: a new one). It is sent as X-Request-ID "
            "and stored on every exchange the run causes.",
        )
        parser.add_argument(
            "--connection",
            type=connection_name,
            metavar="NAME",
            help="The connection to use (default: default, the POC_API_* settings); "
            "see the admin's Connections, or `manage.py add_connection`.",
        )
        parser.add_argument(
            "--user",
            metavar="NAME",
            help="Who runs this, recorded with the command's name on every exchange it causes "
            "(default: the command's name alone).",
        )
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        command = f"command {self.name}"
        user = options.get("user")
        self.connection = options.get("connection")
        with (
            request_id_scope(options.get("request_id")) as current,
            actor_scope(f"{user} ({command})" if user else command),
        ):
            self.request_id = current
            try:
                check_database()
                return super().execute(*args, **options)
            except DatabaseError as exc:
                # A migration check_database cannot see (a new column, not a new table): one line.
                raise CommandError(
                    f"The database is not usable ({' '.join(str(exc).split())}); "
                    "has `manage.py migrate` run?"
                ) from exc

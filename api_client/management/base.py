"""What api_client's commands share: a request id per run, help with examples, exit statuses.

Exit statuses: 0 on success; 1 when the work failed (the API could not be reached, or
answered with an error where the command promises to fail on one); 2 on bad arguments or bad
input, whether argparse or the command found it, in which case nothing was sent.
"""

import argparse
import textwrap
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.base import DjangoHelpFormatter as _DjangoHelpFormatter
from django.db import DatabaseError

from api_client.context import actor_scope, is_well_formed, request_id_scope

BAD_INPUT = 2


class _HelpFormatter(_DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's (base options last), keeping the examples' line breaks."""


def bad_input(message: str) -> CommandError:
    """A ``CommandError`` that exits with status 2, as argparse does for bad arguments."""
    return CommandError(message, returncode=BAD_INPUT)


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
    log line. Subclasses set ``help`` (one sentence), and ``examples`` (command lines) and
    ``notes`` (paragraphs), which ``--help`` shows after the options.
    """

    examples: str = ""
    notes: str = ""
    request_id: str = ""

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
            "--user",
            metavar="NAME",
            help="Who runs this, recorded with the command's name on every exchange it causes "
            "(default: the command's name alone).",
        )
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        command = f"command {self.name}"
        user = options.get("user")
        with (
            request_id_scope(options.get("request_id")) as current,
            actor_scope(f"{user} ({command})" if user else command),
        ):
            self.request_id = current
            try:
                return super().execute(*args, **options)
            except DatabaseError as exc:
                # Typically a database that was never migrated: one line, not a traceback.
                raise CommandError(
                    f"The database is not usable ({' '.join(str(exc).split())}); "
                    "has `manage.py migrate` run?"
                ) from exc

"""Add a connection (or, with ``--update``, change one): an API, its credentials and limits.

The client secret is read from the environment variable ``--client-secret-env`` names, never
from the command line (where ``ps`` and the shell's history would show it). Everything is
checked before anything is saved, as the admin's form checks it (``Connection.full_clean``
and ``api_client.connections.row_problems``); a bad value exits 2 and saves nothing.
"""

import argparse
import os
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import CommandParser
from django.db import transaction

from api_client.connections import row_problems
from api_client.management.base import ApiCommand, bad_input, connection_name
from api_client.models import Connection
from api_client.models.connections import DEFAULT, TUNABLES, UndecryptableSecret

API_OPTIONS = ("base_url", "token_url", "client_id", "scope", "client_auth", "rate_limit")


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


class Command(ApiCommand):
    help = "Add a connection to an API (or change one with --update), checked before it is saved."
    examples = """\
    CLIENT_SECRET=... manage.py add_connection staging \\
        --base-url https://staging.example.com/api/ \\
        --token-url https://staging.example.com/oauth/token \\
        --client-id pocclient --client-secret-env CLIENT_SECRET --rate-limit 40/s
    manage.py add_connection production --update --colour '#b00020' --protected \\
        --send-group "Production senders"
    manage.py add_connection default --update --colour '#1b7f3b'
    """
    notes = """\
    The connection named default is the POC_API_* settings: only its colour, protection and
    groups can be set here. Options left out keep their value with --update; a limit or bound
    left blank takes pocclient's built-in default.
    """

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "name", type=connection_name, metavar="NAME", help="The connection's name."
        )
        parser.add_argument(
            "--update", action="store_true", help="Change the connection NAME, which exists."
        )
        parser.add_argument("--base-url", metavar="URL", help="Where the API lives.")
        parser.add_argument("--token-url", metavar="URL", help="Its OAuth2 token endpoint.")
        parser.add_argument("--client-id", metavar="ID")
        parser.add_argument(
            "--client-secret-env",
            metavar="VAR",
            help="The environment variable that holds the client secret.",
        )
        parser.add_argument("--scope", metavar="SCOPE")
        parser.add_argument("--client-auth", choices=Connection.ClientAuth.values)
        parser.add_argument("--rate-limit", metavar="RULES", help='e.g. "40/s, POST items=15/min"')
        parser.add_argument("--colour", metavar="#RRGGBB", help="Shown in the console.")
        parser.add_argument(
            "--protected",
            action=argparse.BooleanOptionalAction,
            help="The console asks before a batch on it.",
        )
        parser.add_argument(
            "--enabled",
            action=argparse.BooleanOptionalAction,
            help="--no-enabled switches it off (it sends nothing; its log stays).",
        )
        for group in ("send", "read"):
            parser.add_argument(
                f"--{group}-group",
                action="append",
                default=None,
                metavar="GROUP",
                help=f"A group that may {group} with it (repeat for more; replaces the list).",
            )
        for field in TUNABLES:
            kind = Connection._meta.get_field(field).get_internal_type()
            parser.add_argument(
                _option(field), type=float if kind == "FloatField" else int, metavar="N"
            )

    def handle(self, *, name: str, update: bool, **options: Any) -> None:
        if self.connection:
            raise bad_input("Name the connection as NAME, not with --connection.")
        row = Connection.objects.filter(name=name).first()
        if row is None and (update or name == DEFAULT):
            if name != DEFAULT:
                raise bad_input(f"There is no connection named {name!r} to update.")
            row = Connection(name=DEFAULT)
        elif row is not None and not update:
            raise bad_input(f"A connection named {name!r} exists; give --update to change it.")
        row = row or Connection(name=name)
        given = {
            field: options[field]
            for field in (*API_OPTIONS, *TUNABLES, "colour", "protected", "enabled")
            if options.get(field) is not None
        }
        if variable := options.get("client_secret_env"):
            if variable not in os.environ:
                raise bad_input(f"The environment variable {variable} is not set.")
            given["client_secret"] = os.environ[variable]
        if isinstance(row.client_secret, UndecryptableSecret) and "client_secret" not in given:
            raise bad_input(
                f"The stored client secret of {name!r} cannot be decrypted with any key of "
                "POC_ENCRYPTION_KEY; add the old key, or give the secret again with "
                "--client-secret-env VAR. Nothing was saved."
            )
        if row.pk is None and not row.is_default and "client_secret" not in given:
            raise bad_input(
                "Give --client-secret-env VAR, the environment variable that holds the client "
                "secret (never the secret itself on the command line)."
            )
        if row.is_default:
            refused = sorted(set(given) - {"colour", "protected"})
            if refused:
                shown = ", ".join(_option(field) for field in refused)
                raise bad_input(
                    f"The connection default is the POC_API_* settings; {shown} cannot be set "
                    "here (only --colour, --protected and the groups)."
                )
        for field, value in given.items():
            setattr(row, field, value)
        groups = {kind: self._groups(options.get(f"{kind}_group")) for kind in ("send", "read")}
        try:
            row.full_clean()
        except ValidationError as exc:
            raise bad_input(_sentences(exc)) from None
        if problems := row_problems(row):
            raise bad_input(f"The connection {name!r} is not usable: {' '.join(problems)}")
        with transaction.atomic():
            row.save()
            for kind, found in groups.items():
                if found is not None:
                    getattr(row, f"{kind}_groups").set(found)
        self.stdout.write(f"Done! {'Updated' if update else 'Added'} the connection {name!r}.")

    def _groups(self, names: list[str] | None) -> list[Group] | None:
        if names is None:
            return None
        found = {group.name: group for group in Group.objects.filter(name__in=names)}
        if missing := sorted(set(names) - set(found)):
            raise bad_input(f"No group is named {', '.join(map(repr, missing))}.")
        return list(found.values())


def _sentences(exc: ValidationError) -> str:
    parts = []
    for field, messages in exc.message_dict.items():
        where = "" if field == "__all__" else f"{_option(field)}: "
        parts.extend(f"{where}{message}" for message in messages)
    return " ".join(parts)

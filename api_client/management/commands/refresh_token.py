import argparse
from typing import Any

from django.core.management.base import CommandError, CommandParser

from api_client.exceptions import ApiError
from api_client.management.base import ApiCommand


def seconds(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of seconds") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return number


class Command(ApiCommand):
    help = (
        "Make sure a valid API access token is stored, and print when it expires (never the token)."
    )
    examples = """\
        %(prog)s
        %(prog)s --force
        %(prog)s --if-expiring-within 600     # in cron, e.g. every 5 minutes
    """
    # Cron runs this often: skip system checks, whose warnings would fill its mail.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--force", action="store_true", help="Always obtain a new token.")
        mode.add_argument(
            "--if-expiring-within",
            type=seconds,
            metavar="SECONDS",
            help="Refresh only if the token expires within SECONDS (default: reuse any "
            "token that is not due for refresh).",
        )

    def handle(self, *, force: bool, if_expiring_within: int | None, **options: Any) -> None:
        try:
            status, refreshed = self.client().tokens.ensure(
                force=force, if_expiring_within=if_expiring_within
            )
        except ApiError as exc:
            raise CommandError(" ".join(exc.message.split())) from exc
        action = "Obtained a new access token" if refreshed else "The stored access token is valid"
        expires = status.expires_at.strftime("%Y-%m-%d %H:%M:%S %Z") if status.expires_at else "?"
        self.stdout.write(f"{action}; it expires at {expires} (in {status.expires_in} s).")

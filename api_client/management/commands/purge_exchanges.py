import math
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser
from django.db.models import QuerySet
from django.utils import timezone

from api_client.conf import api_settings
from api_client.management.base import ApiCommand, bad_input, plural
from api_client.models import PURGE_SECONDS_PER_BATCH, Exchange


def check_days(value: float | None) -> float:
    if value is None:
        retention = api_settings().EXCHANGE_RETENTION_DAYS
        if not retention:
            raise bad_input(
                "Give --older-than DAYS, or set POC_EXCHANGE_RETENTION_DAYS to a default."
            )
        return float(retention)
    if not (value > 0 and math.isfinite(value)):
        raise bad_input(f"--older-than must be a number of days above 0; got {value}.")
    return float(value)


def describe_age(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


class Command(ApiCommand):
    help = (
        "Delete exchanges older than a number of days, in small batches so that other "
        "writers are never blocked for long, and print how many rows went."
    )
    examples = """\
        %(prog)s --older-than 30
        %(prog)s --older-than 7 --dry-run
        %(prog)s                    # older than POC_EXCHANGE_RETENTION_DAYS
    """
    notes = """\
    In cron, every night at 03:17:
        17 3 * * *  cd /srv/pocclient && .venv/bin/python manage.py purge_exchanges
    """

    def chosen(self, exchanges: QuerySet[Exchange]) -> QuerySet[Exchange]:
        """Every connection's exchanges, or with ``--connection`` only its own."""
        return exchanges.filter(connection=self.connection) if self.connection else exchanges

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="DAYS",
            help="Delete exchanges created more than DAYS days ago (fractions allowed; "
            f"default: POC_EXCHANGE_RETENTION_DAYS, now {api_settings().EXCHANGE_RETENTION_DAYS}"
            ", where 0 means this option is required).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument(
            "--batch-seconds",
            type=float,
            default=PURGE_SECONDS_PER_BATCH,
            metavar="SECONDS",
            help="How long one batch may hold the write lock; batches are sized to fit "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            metavar="N",
            help="Rows deleted per transaction, instead of sizing batches by time.",
        )
        parser.add_argument(
            "--pause",
            type=float,
            metavar="SECONDS",
            help="Pause between batches, letting other writers in (default: a quarter of "
            "the time the batch took).",
        )

    def handle(
        self,
        *,
        older_than: float | None,
        dry_run: bool,
        batch_seconds: float,
        batch_size: int | None,
        pause: float | None,
        verbosity: int,
        **options: Any,
    ) -> None:
        age = check_days(older_than)
        if batch_size is not None and batch_size < 1:
            raise bad_input(f"--batch-size must be at least 1; got {batch_size}.")
        if not (batch_seconds > 0 and math.isfinite(batch_seconds)):
            raise bad_input(f"--batch-seconds must be more than 0; got {batch_seconds}.")
        if pause is not None and not (pause >= 0 and math.isfinite(pause)):
            raise bad_input(f"--pause must be 0 or more seconds; got {pause}.")
        try:
            cutoff = timezone.now() - timedelta(days=age)
        except OverflowError:
            raise bad_input(f"--older-than {age:g} days reaches before the year 1.") from None
        before = f"created before {cutoff:%Y-%m-%d %H:%M:%S %Z} (older than {describe_age(age)})"
        if dry_run:
            count = self.chosen(Exchange.objects.created_before(cutoff)).count()
            self.stdout.write(
                f"Would delete {plural(count, 'exchange')} {before}; nothing was deleted."
            )
            return

        def report(so_far: int) -> None:
            if verbosity >= 2:
                self.stdout.write(f"... {so_far} deleted")

        old = self.chosen(Exchange.objects.created_before(cutoff))
        deleted = old.purge(
            batch_size=batch_size,
            pause=pause,
            seconds_per_batch=batch_seconds,
            on_batch=report,
        )
        self.stdout.write(f"Done! Deleted {plural(deleted, 'exchange')} {before}.")

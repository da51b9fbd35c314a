"""manage.py purge_exchanges: what goes, in what batches, and what it refuses."""

import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from api_client.models import Exchange
from tests.helpers.exchanges import ago, create_exchange, make_exchange, run_command

pytestmark = pytest.mark.django_db


def purge_exchanges(*argv: str) -> str:
    out = StringIO()
    call_command("purge_exchanges", *argv, "--pause", "0", stdout=out, skip_checks=True)
    return out.getvalue()


def seed(old: int, recent: int, *, days_old: float = 40) -> None:
    Exchange.objects.bulk_create(
        [make_exchange(created_at=ago(days=days_old, seconds=n)) for n in range(old)]
        + [make_exchange(created_at=ago(days=1, seconds=n)) for n in range(recent)]
    )


def test_deletes_what_is_older_and_says_how_many_went():
    seed(old=7, recent=3)

    out = purge_exchanges("--older-than", "30")

    assert out.startswith("Done! Deleted 7 exchanges created before ")
    assert out.endswith(" (older than 30 days).\n")
    assert Exchange.objects.count() == 3
    assert not Exchange.objects.older_than(30).exists()


def test_fractions_of_days_are_allowed():
    create_exchange(created_at=ago(hours=13))
    create_exchange(created_at=ago(hours=11))

    out = purge_exchanges("--older-than", "0.5")

    assert "Deleted 1 exchange created" in out and "(older than 0.5 days)" in out


def test_without_older_than_the_retention_setting_applies(settings):
    settings.POC_API = {**settings.POC_API, "EXCHANGE_RETENTION_DAYS": 3}
    create_exchange(created_at=ago(days=4))
    create_exchange(created_at=ago(days=2))

    out = purge_exchanges()

    assert "Deleted 1 exchange created" in out and "(older than 3 days)" in out
    assert Exchange.objects.count() == 1


def test_a_retention_of_0_requires_older_than(settings):
    settings.POC_API = {**settings.POC_API, "EXCHANGE_RETENTION_DAYS": 0}
    create_exchange(created_at=ago(days=400))

    with pytest.raises(CommandError) as caught:
        purge_exchanges()

    assert caught.value.returncode == 2
    assert "Give --older-than DAYS, or set POC_EXCHANGE_RETENTION_DAYS" in str(caught.value)
    assert Exchange.objects.count() == 1


def test_dry_run_counts_and_deletes_nothing():
    seed(old=4, recent=2)

    out = purge_exchanges("--older-than", "30", "--dry-run")

    assert out.startswith("Would delete 4 exchanges created before ")
    assert out.endswith("; nothing was deleted.\n")
    assert Exchange.objects.count() == 6


def test_nothing_old_deletes_nothing():
    seed(old=0, recent=2)

    assert purge_exchanges("--older-than", "30").startswith("Done! Deleted 0 exchanges")


def test_rows_go_in_batches_of_one_statement_each():
    seed(old=10, recent=2)
    by_age = list(Exchange.objects.order_by("created_at", "id").values_list("id", flat=True))

    with CaptureQueriesContext(connection) as queries:
        out = purge_exchanges("--older-than", "30", "--batch-size", "3", "-v", "2")

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 4  # 3 + 3 + 3 + 1, one statement each
    assert all("LIMIT 3" in sql for sql in deletes)
    assert "... 3 deleted\n... 6 deleted\n... 9 deleted\n... 10 deleted\n" in out
    assert "Deleted 10 exchanges" in out
    assert set(Exchange.objects.values_list("id", flat=True)) == set(by_age[10:])


def test_each_batch_takes_the_oldest_rows():
    seed(old=10, recent=2)
    by_age = list(Exchange.objects.order_by("created_at", "id").values_list("id", flat=True))
    left = []

    def remaining(_: int) -> None:
        left.append(
            list(Exchange.objects.order_by("created_at", "id").values_list("id", flat=True))
        )

    Exchange.objects.created_before(ago(days=30)).purge(batch_size=3, pause=0, on_batch=remaining)

    assert left == [by_age[3:], by_age[6:], by_age[9:], by_age[10:]]


@pytest.mark.django_db(transaction=True)
def test_other_writers_get_in_between_batches():
    """Each batch commits on its own: a writer in another thread is never held up by a purge."""
    seed(old=6, recent=0)
    finished = []

    def write_from_another_thread(deleted_so_far: int) -> None:
        assert not connection.in_atomic_block

        def write() -> None:
            try:
                create_exchange(path=f"/during-purge/{deleted_so_far}")
                finished.append(deleted_so_far)
            finally:
                connections.close_all()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=15)
        assert not writer.is_alive()

    deleted = Exchange.objects.created_before(ago(days=30)).purge(
        batch_size=2, pause=0, on_batch=write_from_another_thread
    )

    assert deleted == 6
    assert finished == [2, 4, 6]
    assert Exchange.objects.filter(path__startswith="/during-purge/").count() == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "0"], "--older-than must be a number of days above 0"),
        (["--older-than", "-1"], "--older-than must be a number of days above 0"),
        (["--older-than", "nan"], "--older-than must be a number of days above 0"),
        (["--older-than", "inf"], "--older-than must be a number of days above 0"),
        (["--older-than", "1e9"], "reaches before the year 1"),
        (["--older-than", "30", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--older-than", "30", "--pause", "-1"], "--pause must be 0 or more seconds"),
    ],
)
def test_bad_values_exit_2_and_delete_nothing(argv, message):
    create_exchange(created_at=ago(days=400))

    with pytest.raises(CommandError) as caught:
        call_command("purge_exchanges", *argv, stdout=StringIO(), skip_checks=True)

    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert Exchange.objects.count() == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "a week"], "invalid float value: 'a week'"),
        (["--older-than"], "expected one argument"),
        (["30"], "unrecognized arguments: 30"),
    ],
)
def test_bad_arguments_exit_2_with_usage(argv, message, capsys, monkeypatch):
    result = run_command("purge_exchanges", *argv, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert "usage: manage.py purge_exchanges" in result.err
    assert message in result.err


def test_help_shows_examples_and_a_cron_line(capsys, monkeypatch):
    result = run_command("purge_exchanges", "--help", capsys=capsys, monkeypatch=monkeypatch)

    assert "manage.py purge_exchanges --older-than 7 --dry-run" in result.out
    assert "17 3 * * *  cd /srv/pocclient && .venv/bin/python manage.py purge_exchanges" in (
        result.out
    )
    assert "default: POC_EXCHANGE_RETENTION_DAYS, now 30" in " ".join(result.out.split())


def test_one_exchange_is_counted_in_the_singular():
    create_exchange(created_at=ago(days=40))

    assert purge_exchanges("--older-than", "30", "--dry-run").startswith(
        "Would delete 1 exchange created before "
    )
    assert purge_exchanges("--older-than", "30").startswith(
        "Done! Deleted 1 exchange created before "
    )


@pytest.mark.django_db(transaction=True)
def test_a_delete_of_its_rows_by_someone_else_meanwhile_does_not_end_the_purge_early():
    """On PostgreSQL a DELETE skips the rows another transaction deleted while it waited: a
    batch then comes back short although older rows remain."""
    seed(old=30, recent=0)
    oldest = list(Exchange.objects.order_by("created_at", "id").values_list("id", flat=True)[:3])
    deleting = threading.Event()

    def delete_some_and_wait() -> None:
        try:
            with transaction.atomic():
                Exchange.objects.filter(id__in=oldest).delete()
                deleting.set()
                time.sleep(1.0)  # the purge's first DELETE waits for these rows meanwhile
        finally:
            connections.close_all()

    other = threading.Thread(target=delete_some_and_wait)
    other.start()
    assert deleting.wait(timeout=10)
    deleted = Exchange.objects.created_before(ago(days=30)).purge(batch_size=10, pause=0)
    other.join(timeout=15)

    assert deleted == 27 and not Exchange.objects.exists()

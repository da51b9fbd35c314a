"""The ledger: every call on record before it leaves, written by one thread per process, many
rows per commit; a row left pending by a dead process ends as unknown."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from api_client.exceptions import LedgerError
from api_client.ledger import LEDGER, _Op, sweep
from api_client.models import Exchange, ExchangeRollup

pytestmark = pytest.mark.django_db(transaction=True)

ECHO = {"method": "GET", "path": "echo"}


def test_a_call_is_pending_while_it_is_in_flight_and_answered_after(api, hostile_config, hostile):
    client = hostile_config()
    client.get("slow")  # the token
    seen = []

    def look_while_in_flight() -> None:
        seen.append(Exchange.objects.filter(path="/slow?delay=0.5").values_list("state").first())

    import threading

    timer = threading.Timer(0.25, look_while_in_flight)
    timer.start()
    response = client.get("slow", query={"delay": 0.5})
    timer.join()

    assert seen == [("pending",)]
    row = Exchange.objects.get(pk=response.exchange_id)
    assert (row.state, row.status) == ("answered", 200)


def test_the_caller_reads_its_calls_end_in_a_transaction_and_through_refresh_from_db(api):
    # On PostgreSQL the end of a single call is written by the ledger's thread after the call
    # returns: the same thread's reads wait for it, inside a transaction too.
    seen = []
    for _ in range(10):
        response = api.get("whoami")
        with transaction.atomic():
            seen.append(Exchange.objects.get(pk=response.exchange_id).state)
        response = api.get("whoami")
        row = Exchange(pk=response.exchange_id)
        row.refresh_from_db()
        seen.append(row.state)

    assert seen == ["answered"] * 20


def test_every_result_carries_the_id_of_its_exchange_committed_before_the_batch_returns(api):
    results = api.request_many([ECHO] * 40, concurrency=8, batch_id="b-ids")

    ids = [r.exchange_id for r in results]
    assert all(isinstance(i, int) for i in ids)
    stored = dict(Exchange.objects.filter(batch_id="b-ids").values_list("pk", "state"))
    assert sorted(stored) == sorted(ids)
    assert set(stored.values()) == {"answered"}


def test_many_rows_share_a_commit(api):
    api.get("whoami")
    LEDGER.flush()  # its end is written after it returns
    commits, rows = LEDGER.commits, LEDGER.rows

    api.request_many([ECHO] * 64, concurrency=16)

    assert LEDGER.rows - rows == 128  # each call: its pending row, then its end
    assert LEDGER.commits - commits < 128


def test_a_refused_connection_is_failed_a_broken_one_unknown(configure_api, closed_port, hostile):
    refused = configure_api(BASE_URL=f"http://127.0.0.1:{closed_port}/", RETRIES=0)
    [result] = refused.request_many([ECHO])
    assert Exchange.objects.get(pk=result.exchange_id).state == "failed"

    broken = configure_api(BASE_URL=f"{hostile.url}/api/", TOKEN_URL=f"{hostile.url}/token",
                           CLIENT_ID="hostile-client", CLIENT_SECRET="hostile-secret-0123456789",
                           RETRIES=0)  # fmt: skip
    [result] = broken.request_many([{"method": "POST", "path": "reset", "json": {}}])
    row = Exchange.objects.get(pk=result.exchange_id)
    assert (row.state, row.error_code) == ("unknown", "connection_error")


def test_a_call_that_cannot_be_recorded_is_not_sent(api, monkeypatch, hostile_config, hostile):
    client = hostile_config()
    client.get("slow")  # the token
    sent = len(hostile.received)

    def refuse(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Exchange.objects, "bulk_create", refuse)
    monkeypatch.setattr(Exchange.objects, "record", refuse)

    with pytest.raises(LedgerError) as caught:
        client.get("slow")

    assert "could not record" in caught.value.message
    assert len(hostile.received) == sent  # nothing left for the API


def test_one_bad_row_costs_only_itself_its_record():
    from concurrent.futures import Future

    rows = [Exchange(method="GET", url="http://x/", path=f"/{n}", status=200) for n in range(5)]
    bad = Exchange(method="GET", url="http://x/", path="/bad", status=-1)  # fails a CHECK
    ops = [_Op("record", row, future=Future()) for row in [*rows, bad]]

    LEDGER._write(ops)  # what the writer does with what it found waiting

    assert Exchange.objects.filter(pk__in=[r.pk for r in rows]).count() == 5
    assert [op.future.result() for op in ops[:5]] == [r.pk for r in rows]
    assert isinstance(ops[5].future.exception(), LedgerError)


def test_stopping_a_batch_early_still_commits_every_call_that_was_made(api):
    calls = [{"method": "GET", "path": "echo", "query": {"delay": 0.05}}] * 40
    seen = []
    for result in api.iter_many(calls, concurrency=4, batch_id="b-stop"):
        seen.append(result)
        if len(seen) == 3:
            break

    made = Exchange.objects.filter(batch_id="b-stop")
    assert 3 <= made.count() < 40
    assert not made.filter(state="pending").exists()


def test_stopping_the_writer_writes_what_is_queued():
    rows = [Exchange(method="GET", url="http://x/", path="/", status=200) for _ in range(25)]
    for row in rows:
        LEDGER._submit(_Op("record", row))  # queued, as callers that do not wait leave them

    LEDGER.stop()

    assert Exchange.objects.filter(pk__in=[r.pk for r in rows]).count() == 25


def test_inside_a_transaction_the_call_is_recorded_on_its_connection(hostile_client):
    # The hostile API, not the sandbox: the sandbox writes to this database from the live
    # server's thread, which would wait for this transaction's lock.
    with transaction.atomic():
        response = hostile_client.get("slow")
        assert Exchange.objects.filter(pk=response.exchange_id, state="answered").exists()


def make_pending(**fields) -> Exchange:
    return Exchange.objects.create(
        method="POST", url="http://x/items", path="/items", state="pending", **fields
    )


def test_a_row_left_pending_past_its_settle_by_is_shown_and_swept_as_unknown():
    abandoned = make_pending(settle_by=timezone.now() - timedelta(seconds=1))
    in_flight = make_pending(settle_by=timezone.now() + timedelta(minutes=1))

    assert abandoned.shown_state == "unknown"
    assert in_flight.shown_state == "pending"
    assert sweep() == 1
    assert sweep() == 0  # each row once

    abandoned.refresh_from_db()
    assert (abandoned.state, abandoned.error_code) == ("unknown", "abandoned")
    assert "may have received it" in abandoned.error
    assert ExchangeRollup.objects.filter(status_class=0).get().calls == 1


def test_finished_calls_are_counted_in_their_minute(api):
    api.request_many([ECHO] * 5 + [{"method": "GET", "path": "items/999999"}] * 2)

    counts = Counter()
    for row in ExchangeRollup.objects.filter(kind="api"):
        counts[row.status_class] += row.calls  # summed over the duration buckets
    assert (counts[2], counts[4]) == (5, 2)

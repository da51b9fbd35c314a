"""A batch's exchanges: committed by the batch's own writer thread, ids on every result."""

import threading

import pytest

from api_client.models import Exchange
from api_client.recording import ExchangeWriter

ECHO = {"method": "GET", "path": "echo"}


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("api-exchange-writer")]


def test_every_result_carries_the_id_of_its_committed_exchange(api):
    results = api.request_many([ECHO] * 40, concurrency=8, batch_id="b-ids")

    ids = [r.exchange_id for r in results]
    assert all(isinstance(i, int) for i in ids)
    stored = dict(Exchange.objects.filter(batch_id="b-ids").values_list("pk", "status"))
    assert sorted(stored) == sorted(ids)
    assert set(stored.values()) == {200}
    assert writer_threads() == []


def test_errors_carry_their_exchange_id_too(api, closed_port, configure_api):
    client = configure_api(BASE_URL=f"http://127.0.0.1:{closed_port}/", RETRIES=0)

    [result] = client.request_many([ECHO])

    assert result.error is not None
    assert Exchange.objects.get(pk=result.exchange_id).error_code == "connection_error"


def test_a_failed_bulk_insert_falls_back_to_one_row_at_a_time(api, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("bulk insert refused")

    monkeypatch.setattr(Exchange.objects, "bulk_create", refuse)

    results = api.request_many([ECHO] * 10, concurrency=4, batch_id="b-fallback")

    assert Exchange.objects.filter(batch_id="b-fallback").count() == 10
    assert all(isinstance(r.exchange_id, int) for r in results)


def test_when_nothing_can_be_stored_the_results_still_come_back(api, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise RuntimeError("disk full")

    api.get("whoami")  # the token, stored before the database "fills up"
    monkeypatch.setattr(Exchange.objects, "bulk_create", refuse)
    monkeypatch.setattr(Exchange.objects, "record", refuse)

    results = api.request_many([ECHO] * 5, concurrency=2)

    assert [r.status for r in results] == [200] * 5
    assert [r.exchange_id for r in results] == [None] * 5
    assert "Could not record the exchange" in caplog.text


def test_stopping_a_batch_early_still_commits_every_call_that_was_made(api):
    calls = [{"method": "GET", "path": "echo", "query": {"delay": 0.05}}] * 40
    seen = []
    for result in api.iter_many(calls, concurrency=4, batch_id="b-stop"):
        seen.append(result)
        if len(seen) == 3:
            break

    made = Exchange.objects.filter(batch_id="b-stop").count()
    assert 3 <= made < 40
    assert writer_threads() == []


@pytest.mark.django_db(transaction=True)
def test_the_writer_commits_what_is_queued_before_it_stops():
    writer = ExchangeWriter()
    futures = [
        writer.submit(Exchange(method="GET", url="http://x/", path="/", status=200))
        for _ in range(25)
    ]
    writer.close()

    ids = [f.result(timeout=0) for f in futures]
    assert Exchange.objects.filter(pk__in=ids).count() == 25

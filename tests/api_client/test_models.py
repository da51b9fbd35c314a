"""The Exchange fast INSERT writes exactly what save() would."""

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from api_client.models import Exchange, Token, mask


def exchange(**changes) -> Exchange:
    values = {
        "kind": Exchange.Kind.API,
        "method": "POST",
        "url": "http://api.example/v1/items?x=1",
        "path": "/items?x=1",
        "request_headers": {"Authorization": "Bearer [redacted]", "X-Ü": "ü"},
        "request_body": '{"name": "é"}',
        "status": 201,
        "response_headers": {"Content-Type": "application/json"},
        "response_body": '{"id": 1}',
        "duration_ms": 12.5,
        "attempts": 2,
        "thread": "api-worker-1 (123)",
        "request_id": "req-1",
        "batch_id": "b-1",
    }
    return Exchange(**{**values, **changes})


@pytest.mark.django_db
def test_record_stores_the_same_row_as_save():
    saved = exchange()
    saved.save()
    recorded = exchange(created_at=saved.created_at)

    pk = Exchange.objects.record(recorded)

    assert pk == recorded.pk and pk != saved.pk
    fresh_saved, fresh_recorded = (Exchange.objects.get(pk=p) for p in (saved.pk, pk))
    ignore = {"id"}
    assert {k: v for k, v in model_to_dict(fresh_recorded).items() if k not in ignore} == {
        k: v for k, v in model_to_dict(fresh_saved).items() if k not in ignore
    }
    assert not recorded._state.adding


@pytest.mark.django_db
def test_record_keeps_a_missing_status_as_null():
    pk = Exchange.objects.record(exchange(status=None, error="boom", error_code="timeout"))

    assert Exchange.objects.get(pk=pk).status is None
    assert Exchange.objects.failed().filter(pk=pk).exists()


def test_mask_shows_enough_to_tell_tokens_apart_but_not_to_use_them():
    assert mask("abcdefghijklmnopqrstuvwxyz") == "abcd…26 chars"
    assert mask("short") == "…"
    assert mask("") == ""


def test_refresh_is_due_at_leeway_before_expiry_but_not_before_half_the_life():
    now = timezone.now()
    long_lived = Token(access_token="t", obtained_at=now, expires_at=now + timedelta(hours=1))
    short_lived = Token(access_token="t", obtained_at=now, expires_at=now + timedelta(seconds=60))

    assert long_lived.refresh_due_at(60) == long_lived.expires_at - timedelta(seconds=60)
    assert short_lived.refresh_due_at(60) == now + timedelta(seconds=30)
    assert short_lived.is_usable(60, now + timedelta(seconds=29))
    assert not short_lived.is_usable(60, now + timedelta(seconds=30))

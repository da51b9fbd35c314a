"""Exchange rows for admin, metrics and purge tests, without calling any API."""

import io
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.management import get_commands, load_command_class
from django.db import connections
from django.utils import timezone

from api_client.models import Exchange


def make_exchange(**fields: Any) -> Exchange:
    """An unsaved exchange: a GET answered 200 now, unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "method": "GET",
        "url": "http://api.example/v1/items",
        "path": "/items",
        "status": 200,
        "duration_ms": 10.0,
        "request_headers": {"Accept": "application/json"},
        "response_headers": {"Content-Type": "application/json"},
        "response_body": '{"ok": true}',
    }
    values.update(fields)
    return Exchange(**values)


def create_exchange(**fields: Any) -> Exchange:
    exchange = make_exchange(**fields)
    exchange.save()
    return exchange


def ago(**delta: float) -> Any:
    return timezone.now() - timedelta(**delta)


class TTY(io.StringIO):
    """Captured output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class _KeepOpen:
    """Django's connections, except that ``close_all`` (at the end of a run) does nothing."""

    def close_all(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(connections, name)

    def __getitem__(self, alias: str) -> Any:
        return connections[alias]


@dataclass
class Run:
    status: int
    out: str
    err: str


def run_command(name: str, *argv: str, capsys: Any, monkeypatch: Any) -> Run:
    """Run a command as ``manage.py name argv...`` would: exit status, stdout and stderr.

    ``run_from_argv`` closes every database connection when it ends, which would end the
    test's transaction; that step is skipped here.
    """
    monkeypatch.setattr("django.core.management.base.connections", _KeepOpen())
    command = load_command_class(get_commands()[name], name)
    capsys.readouterr()
    try:
        command.run_from_argv(["manage.py", name, *argv])
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Run(status, captured.out, captured.err)


def fake_stdin(monkeypatch: Any, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def record_finished(exchanges: list[Exchange]) -> list[Exchange]:
    """Store finished exchanges as the ledger does: the rows, and their counts in the
    per-minute rollup that the summary reads."""
    from collections import Counter

    from api_client.models import ExchangeRollup

    created = Exchange.objects.bulk_create(exchanges)
    ExchangeRollup.objects.add(Counter(ExchangeRollup.key_of(e) for e in created))
    return created

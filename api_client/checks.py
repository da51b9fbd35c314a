"""System checks: configuration mistakes reported before the first request, with hints."""

import sqlite3
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import ApiSettings, api_settings

# SQLite 3.7.0 through 3.51.2 can corrupt a WAL database when two connections write or
# checkpoint at the same moment ("WAL-reset bug"); 3.51.3 fixed it.
SQLITE_WAL_RESET_FIXED = (3, 51, 3)


@register()
def check_api_settings(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    unknown = sorted(set(getattr(settings, "POC_API", {})) - set(ApiSettings.__dataclass_fields__))
    if unknown:
        messages.append(
            Error(
                f"settings.POC_API has unknown key(s): {', '.join(unknown)}.",
                hint="See api_client/conf.py for the keys it understands.",
                id="api_client.E002",
            )
        )
    for problem in api_settings().problems():
        messages.append(
            Error(problem, hint="Fix the environment variable and restart.", id="api_client.E001")
        )
    return messages


def uses_sqlite() -> bool:
    return any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values())


@register()
def check_sqlite_version(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    if not uses_sqlite() or sqlite3.sqlite_version_info >= SQLITE_WAL_RESET_FIXED:
        return []
    return [
        Warning(
            f"SQLite {sqlite3.sqlite_version} has the WAL-reset bug (3.7.0 to 3.51.2): "
            "concurrent writers can, rarely, corrupt a WAL database.",
            hint=(
                "Use a Python built against SQLite 3.51.3 or newer for production on SQLite, "
                "or use PostgreSQL (DATABASE_URL=postgres://...). See the README."
            ),
            id="api_client.W001",
        )
    ]

"""System checks: configuration mistakes reported before the first request, with hints.

The SQLite warning (W001) is about a choice of deployment, not about this run: it is a deploy
check, shown where that choice is made (``manage.py check --deploy``, ``make run``, the admin
index) rather than on the stderr of every command a cron job runs. So is the warning about the
development encryption key (W002): with DEBUG off there is none, and a missing or bad
``POC_ENCRYPTION_KEY`` is an error (E003, E004) that stops ``runserver`` and ``migrate``.
"""

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.checks import CheckMessage, Error, Tags, Warning, register, run_checks
from django.http import HttpRequest, HttpResponse

from . import encryption
from .conf import ApiSettings, api_settings

# SQLite 3.7.0 through 3.51.2 can corrupt a WAL database when two connections write or
# checkpoint at the same moment ("WAL-reset bug"); 3.51.3 fixed it.
SQLITE_WAL_RESET_FIXED = (3, 51, 3)
# `manage.py check --deploy --tag sqlite` runs the SQLite checks alone (as `make run` does).
SQLITE_TAG = "sqlite"


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


@register(Tags.database)
def check_connections(
    app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W003: an enabled connection that cannot be used (``check --database default``, and
    ``migrate``, which read the database; plain ``check`` does not)."""
    if not databases:
        return []
    from django.db import DatabaseError

    from .connections import UnknownConnectionError, settings_for
    from .models import Connection

    found: list[CheckMessage] = []
    try:
        names = list(
            Connection.objects.filter(enabled=True)
            .exclude(name="default")
            .values_list("name", flat=True)
        )
    except DatabaseError:  # not migrated yet: migrate's own checks run before its tables
        return []
    for name in names:
        try:
            settings_for(name)
        except UnknownConnectionError as exc:
            found.append(
                Warning(
                    exc.message,
                    hint="Fix it in the admin (Connections) or with `manage.py add_connection "
                    f"{name} --update ...`, or switch it off.",
                    id="api_client.W003",
                )
            )
    return found


@register()
def check_encryption_key(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    keys = encryption.configured_keys()
    if not keys:
        if settings.DEBUG:  # the development key; W002 says so under --deploy
            return []
        return [Error(encryption.NO_KEY, hint=encryption.NO_KEY_HINT, id="api_client.E003")]
    return [
        Error(
            problem,
            hint=(
                f"Generate a key with `{encryption.GENERATE}`. Several keys are separated by "
                "commas, newest first."
            ),
            id="api_client.E004",
        )
        for problem in encryption.key_problems(keys)
    ]


@register(deploy=True)
def check_development_encryption_key(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    if not encryption.uses_development_key():
        return []
    return [
        Warning(
            f"{encryption.VARIABLE} is not set: the stored tokens are encrypted under a "
            "development key derived from DJANGO_SECRET_KEY, which is only meant for DEBUG.",
            hint=(
                f"Before deploying, generate a key with `{encryption.GENERATE}` and set "
                f"{encryption.VARIABLE} to it (tokens stored under the development key then "
                "read as missing and are obtained anew)."
            ),
            id="api_client.W002",
        )
    ]


def uses_sqlite() -> bool:
    return any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values())


@register(SQLITE_TAG, deploy=True)
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


def deployment_warnings() -> list[CheckMessage]:
    """What the SQLite checks find in this process, for the pages that show it."""
    return run_checks(tags=[SQLITE_TAG], include_deployment_checks=True)


def warn_on_admin_index(site: AdminSite) -> None:
    """Show ``deployment_warnings`` as warning boxes on ``site``'s index page: the admin is
    where whoever runs pocclient on SQLite looks, a cron job's mail is not."""
    index = site.index

    @functools.wraps(index)
    def index_with_warnings(
        request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        for warning in deployment_warnings():
            messages.warning(
                request, f"{warning.msg} {warning.hint} ({warning.id})", fail_silently=True
            )
        return index(request, extra_context)

    site.index = index_with_warnings  # type: ignore[method-assign]

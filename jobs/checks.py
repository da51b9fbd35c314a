"""System checks of the jobs app: the Tasks framework must point at a backend that keeps
tasks (a job run by the ImmediateBackend would block the request that made it)."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Warning, register


@register()
def check_tasks_backend(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    backend = getattr(settings, "TASKS", {}).get("default", {}).get("BACKEND", "")
    if backend.endswith(("ImmediateBackend", "DummyBackend")):
        return [
            Warning(
                f"TASKS['default'] uses {backend.rsplit('.', 1)[-1]}: jobs would run inside "
                "the request that makes them, or never.",
                hint="Use django_tasks_db.DatabaseBackend (the default) or another queue.",
                id="jobs.W001",
            )
        ]
    return []

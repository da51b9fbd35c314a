from django.apps import AppConfig


class ApiClientConfig(AppConfig):
    name = "api_client"
    verbose_name = "API client"

    def ready(self) -> None:
        from django.contrib import admin
        from django.db.models.signals import post_migrate

        from . import (  # noqa: F401 (registers checks and the settings receiver)
            checks,
            conf,
            connections,
        )
        from .permissions import ensure_console_users_group, ensure_default_connection

        post_migrate.connect(ensure_console_users_group, sender=self)
        post_migrate.connect(ensure_default_connection, sender=self)
        checks.warn_on_admin_index(admin.site)

"""Who may do what: the console's two permissions, and the group that gives both.

``api_client.send_request`` sends (the console's send, batch and forced token refresh, the
admin's replay and *Refresh now*); ``api_client.view_exchange`` reads (the history, the
exchanges, the token's state). The "Console users" group holds both; it is made after every
``migrate`` (as Django makes permissions), so it exists on a new database and after a test
run flushes one.
"""

from typing import Any

from django.apps import AppConfig

SEND = "api_client.send_request"
VIEW = "api_client.view_exchange"
CONSOLE_USERS = "Console users"


def ensure_console_users_group(
    app_config: AppConfig, using: str = "default", **kwargs: Any
) -> None:
    """``post_migrate``: the group, with both permissions (made by Django's own handler,
    which runs before this one: the auth app comes first in INSTALLED_APPS)."""
    if app_config.label != "api_client":
        return
    from django.contrib.auth.models import Group, Permission
    from django.db import connections

    # `migrate api_client 0001` on a new database runs this before auth's tables exist.
    if Group._meta.db_table not in connections[using].introspection.table_names():
        return
    group, _ = Group.objects.using(using).get_or_create(name=CONSOLE_USERS)
    codenames = [name.split(".", 1)[1] for name in (SEND, VIEW)]
    group.permissions.add(
        *Permission.objects.using(using).filter(
            content_type__app_label="api_client", codename__in=codenames
        )
    )


def ensure_default_connection(app_config: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate``: the row of the environment's connection, which holds what the
    environment does not (its colour, protection and groups)."""
    if app_config.label != "api_client":
        return
    from django.db import connections

    from .models import Connection

    # A partial migrate (`migrate auth`) runs this before the table exists.
    if Connection._meta.db_table in connections[using].introspection.table_names():
        Connection.objects.using(using).get_or_create(name="default")

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ..connections import may_send, readable
from ..permissions import SEND


class SendsRequests:
    """For a ModelAdmin whose actions call the API: ``allowed_permissions = ("send",)`` offers
    them only to users with ``api_client.send_request`` (superusers have it)."""

    def has_send_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SEND)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are written by the client, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ByConnection:
    """For a ModelAdmin of rows that belong to a connection: only the rows of connections
    the user may read are listed, found or exported (``api_client.connections``)."""

    connection_lookup = "connection"

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        names = readable(request.user)
        if names is None:
            return queryset
        return queryset.filter(**{f"{self.connection_lookup}__in": sorted(names)})


def refused_connections(request: HttpRequest, names: Any) -> list[str]:
    """Of ``names``, those the user may not send with, sorted."""
    return sorted({name for name in names if not may_send(request.user, name)})

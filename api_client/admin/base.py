from typing import Any

from django.contrib import admin
from django.http import HttpRequest

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

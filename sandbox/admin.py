from django.contrib import admin
from django.http import HttpRequest

from sandbox.models import Grant, Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at", "updated_at")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    date_hierarchy = "created_at"


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Read-only: grants are a log of what the token endpoint issued."""

    list_display = ("issued_at", "grant_type", "client_id", "scope", "refresh_token", "used_at")
    list_filter = ("grant_type", "client_id")
    search_fields = ("client_id",)
    date_hierarchy = "issued_at"
    fields = ("grant_type", "client_id", "scope", "refresh_token", "issued_at", "used_at")
    readonly_fields = fields

    @admin.display(description="refresh token hash")
    def refresh_token(self, obj: Grant) -> str:
        # Enough to tell rows apart, never the whole hash.
        return f"{obj.refresh_token_hash[:8]}…" if obj.refresh_token_hash else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Grant | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Grant | None = None) -> bool:
        return False

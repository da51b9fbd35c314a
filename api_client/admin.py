import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from .conf import api_settings
from .exceptions import ApiError
from .models import Exchange, Token


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are written by the client, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Token)
class TokenAdmin(ReadOnlyAdmin):
    list_display = (
        "client_id",
        "token_url",
        "state",
        "masked",
        "expires_at",
        "expires_in",
        "obtained_at",
        "refresh_count",
        "last_error",
    )
    readonly_fields = (
        "client_id",
        "token_url",
        "masked",
        "token_type",
        "scope",
        "state",
        "expires_at",
        "expires_in",
        "obtained_at",
        "refresh_count",
        "last_error",
        "last_error_at",
        "lease_owner",
        "lease_until",
        "updated_at",
    )
    fields = readonly_fields
    actions = ("refresh_now",)

    @admin.display(description="access token")
    def masked(self, obj: Token) -> str:
        return obj.masked_access_token or "—"

    @admin.display(description="state")
    def state(self, obj: Token) -> str:
        return obj.state(api_settings().TOKEN_LEEWAY).label

    @admin.display(description="expires in")
    def expires_in(self, obj: Token) -> str:
        if not obj.expires_at:
            return "—"
        seconds = int((obj.expires_at - timezone.now()).total_seconds())
        return "expired" if seconds <= 0 else f"{seconds // 60} min {seconds % 60} s"

    @admin.action(description="Refresh now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        from .client import get_client

        client = get_client()
        if not queryset.filter(credential_key=client.tokens.key).exists():
            self.message_user(
                request,
                "Only the token of the configured credential (POC_API_CLIENT_ID at "
                "POC_API_TOKEN_URL) can be refreshed.",
                messages.WARNING,
            )
            return
        try:
            status, _ = client.tokens.ensure(force=True)
        except ApiError as exc:
            self.message_user(request, f"Refresh failed: {exc.message}", messages.ERROR)
            return
        self.message_user(request, f"Refreshed; the new token expires at {status.expires_at}.")


class StatusClassFilter(admin.SimpleListFilter):
    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("2", "2xx"), ("3", "3xx"), ("4", "4xx"), ("5", "5xx"), ("0", "no response")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        if self.value() in {"0", "2", "3", "4", "5"}:
            return queryset.in_status_class(int(self.value()))
        return queryset


def pretty(text: str) -> str:
    """JSON re-indented for reading; anything else as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return text


@admin.register(Exchange)
class ExchangeAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "method",
        "short_path",
        "status",
        "duration",
        "attempts",
        "error_code",
    )
    list_filter = (StatusClassFilter, "method", "kind", "created_at")
    search_fields = ("path", "request_id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "created_at",
        "kind",
        "method",
        "url",
        "status",
        "duration_ms",
        "attempts",
        "error_code",
        "error",
        "request_id",
        "batch_id",
        "thread",
        "pretty_request_headers",
        "pretty_request_body",
        "pretty_response_headers",
        "pretty_response_body",
        "response_truncated",
    )
    readonly_fields = fields

    @admin.display(description="path", ordering="path")
    def short_path(self, obj: Exchange) -> str:
        return obj.path if len(obj.path) <= 80 else obj.path[:79] + "…"

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: Exchange) -> str:
        return f"{obj.duration_ms:.1f} ms"

    @admin.display(description="request headers")
    def pretty_request_headers(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.request_headers, indent=2))

    @admin.display(description="request body")
    def pretty_request_body(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", pretty(obj.request_body))

    @admin.display(description="response headers")
    def pretty_response_headers(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.response_headers, indent=2))

    @admin.display(description="response body")
    def pretty_response_body(self, obj: Exchange) -> str:
        return format_html("<pre>{}</pre>", pretty(obj.response_body))

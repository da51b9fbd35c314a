"""The token admin: the token masked, its expiry and last error, and *Refresh now*."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ..client import get_client
from ..conf import api_settings
from ..exceptions import ApiError
from ..models import Token
from .base import ReadOnlyAdmin


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
        "last_error_at",
    )
    readonly_fields = (*list_display, "scope", "lease_owner", "lease_until", "updated_at")
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
        self.message_user(
            request, f"Refreshed; the new token expires at {status.expires_at}.", messages.SUCCESS
        )

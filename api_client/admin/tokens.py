"""The token admin: the token masked, its expiry and last error, and *Refresh now*."""

from datetime import datetime

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from ..client import get_client
from ..conf import api_settings
from ..connections import UnknownConnectionError, may_send, settings_for
from ..exceptions import ApiError
from ..models import Token
from .base import ByConnection, ReadOnlyAdmin, SendsRequests

# The list keeps within a 1400 px page: longer cells are cut (the whole text is their tooltip,
# and on the detail page), times are compact and may wrap, and when the last error happened
# is in its tooltip rather than a column of its own.
CELL_CHARS = 60
STAMP = "%Y-%m-%d %H:%M:%S"


def cell(text: str, title: str = "") -> str:
    """``text``, or its first ``CELL_CHARS`` characters and "…" with the whole as its title."""
    if not text:
        return "—"
    if len(text) <= CELL_CHARS and not title:
        return text
    shown = text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
    return format_html('<span title="{}">{}</span>', title or text, shown)


def stamp(value: datetime | None) -> str:
    return timezone.localtime(value).strftime(STAMP) if value else "—"


def expiry(expires_at: datetime | None, now: datetime | None = None) -> str:
    """``2026-12-01 22:30:05 UTC, in 59 min``: when, in the admin's time zone, and how soon."""
    if expires_at is None:
        return "an unknown time (the token endpoint gave no lifetime)"
    local = timezone.localtime(expires_at)
    seconds = int((expires_at - (now or timezone.now())).total_seconds())
    if seconds <= 0:
        soon = "already expired"
    elif seconds < 60:
        soon = f"in {seconds} s"
    elif seconds < 2 * 3600:
        soon = f"in {seconds // 60} min"
    else:
        soon = f"in {seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{local.strftime(STAMP)} {local.tzname()}, {soon}"


@admin.register(Token)
class TokenAdmin(SendsRequests, ByConnection, ReadOnlyAdmin):
    list_display = (
        "credential",
        "short_token_url",
        "state",
        "masked",
        "expires",
        "obtained",
        "refresh_count",
        "short_last_error",
    )
    readonly_fields = (
        "connection",
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
        "scope",
        "lease_owner",
        "lease_until",
        "updated_at",
    )
    fields = readonly_fields
    actions = ("refresh_now",)

    @admin.display(description="connection: client", ordering="client_id")
    def credential(self, obj: Token) -> str:
        return f"{obj.connection}: {obj.client_id}"

    @admin.display(description="token URL", ordering="token_url")
    def short_token_url(self, obj: Token) -> str:
        return cell(obj.token_url)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj: Token) -> str:
        if not obj.expires_at:
            return "—"
        return format_html(
            '{}<br><span class="quiet">{}</span>', stamp(obj.expires_at), self.expires_in(obj)
        )

    @admin.display(description="last refresh", ordering="obtained_at")
    def obtained(self, obj: Token) -> str:
        return stamp(obj.obtained_at)

    @admin.display(description="last error")
    def short_last_error(self, obj: Token) -> str:
        if not obj.last_error:
            return "—"
        when = f"{stamp(obj.last_error_at)}: " if obj.last_error_at else ""
        return cell(obj.last_error, when + obj.last_error)

    @admin.display(description="access token")
    def masked(self, obj: Token) -> str:
        return obj.masked_access_token or "—"

    @admin.display(description="state")
    def state(self, obj: Token) -> str:
        try:
            leeway = settings_for(obj.connection).TOKEN_LEEWAY
        except UnknownConnectionError:
            leeway = api_settings().TOKEN_LEEWAY
        return obj.state(leeway).label

    @admin.display(description="expires in")
    def expires_in(self, obj: Token) -> str:
        if not obj.expires_at:
            return "—"
        seconds = int((obj.expires_at - timezone.now()).total_seconds())
        return "expired" if seconds <= 0 else f"{seconds // 60} min {seconds % 60} s"

    @admin.action(description="Refresh now", permissions=("send",))
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        # Each selected token is its connection's, if that connection still holds it.
        for token in queryset:
            if not may_send(request.user, token.connection):
                self.message_user(
                    request,
                    f"You may not send with the connection {token.connection!r}.",
                    messages.ERROR,
                )
                continue
            try:
                client = get_client(token.connection)
            except UnknownConnectionError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            if token.credential_key != client.tokens.key:
                self.message_user(
                    request,
                    f"The token for {token.client_id} is no longer the credential of the "
                    f"connection {token.connection!r}; only a connection's current token can be "
                    "refreshed.",
                    messages.WARNING,
                )
                continue
            try:
                status, _ = client.tokens.ensure(force=True)
            except ApiError as exc:
                self.message_user(request, f"Refresh failed: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"Refreshed the token of {token.connection!r}; it expires at "
                f"{expiry(status.expires_at)}.",
                messages.SUCCESS,
            )

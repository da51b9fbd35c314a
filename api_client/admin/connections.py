"""The connections: added, edited and switched off here (or with ``add_connection``).

``default`` is the environment's (``POC_API_*``): its settings are shown read only, and only
what the environment does not hold (colour, protection, groups) is edited. A client secret is
never shown, not even masked in the form: the field is write-only, and left empty it keeps
the stored one. Connections are switched off rather than deleted, since exchanges and jobs
name them.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from ..conf import api_settings
from ..connections import row_problems
from ..models import Connection
from ..models.connections import TUNABLES, UndecryptableSecret

CONFIG_FIELDS = ("base_url", "token_url", "client_id", "client_secret", "scope", "client_auth",
                 "rate_limit", *TUNABLES)  # fmt: skip
OWN_FIELDS = ("name", "enabled", "colour", "protected", "send_groups", "read_groups")


class ConnectionForm(forms.ModelForm):
    client_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave empty to keep the stored secret.",
    )

    class Meta:
        model = Connection
        fields = (*OWN_FIELDS, *CONFIG_FIELDS)

    def clean_client_secret(self) -> str:
        given = self.cleaned_data.get("client_secret") or ""
        if given:
            return given
        stored = self.instance.client_secret if self.instance.pk else ""
        if isinstance(stored, UndecryptableSecret):
            raise ValidationError(
                "The stored secret cannot be decrypted with any key of POC_ENCRYPTION_KEY; "
                "give it again."
            )
        return stored

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.is_default or self.errors:
            return
        for problem in row_problems(self.instance):
            self.add_error(None, problem[0].upper() + problem[1:])


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ("name", "swatch", "enabled", "protected", "shown_base_url", "shown_client")
    list_filter = ("enabled", "protected")
    search_fields = ("name",)
    filter_horizontal = ("send_groups", "read_groups")

    @method_decorator(sensitive_post_parameters("client_secret"))
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return super().changeform_view(request, *args, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Connection | None = None) -> Any:
        own = (None, {"fields": OWN_FIELDS})
        if obj is not None and obj.is_default:
            return (own, ("From the environment (POC_API_*)", {"fields": ("environment",)}))
        # Who may only view sees whether there is a secret: a read-only field would print it.
        secret = "client_secret" if self.has_change_permission(request, obj) else "secret_state"
        api = ("base_url", "token_url", ("client_id", "client_auth"), secret, "scope")
        bounds = ("rate_limit", *TUNABLES)
        return (
            own,
            ("The API", {"fields": api}),
            (
                "Limits and bounds (blank: pocclient's default)",
                {"fields": bounds, "classes": ["collapse"]},
            ),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Connection | None = None) -> Any:
        if obj is not None and obj.is_default:
            return ("name", "enabled", "environment")
        if obj is not None and not self.has_change_permission(request, obj):
            return (*OWN_FIELDS, *(f for f in CONFIG_FIELDS if f != "client_secret"),
                    "secret_state")  # fmt: skip
        return ("name",) if obj is not None else ()

    @admin.display(description="client secret")
    def secret_state(self, obj: Connection) -> str:
        if isinstance(obj.client_secret, UndecryptableSecret):
            return "(set, but no key of POC_ENCRYPTION_KEY decrypts it)"
        return "(set, not shown)" if obj.client_secret else "(empty)"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # switched off instead: exchanges and jobs name it

    @admin.display(description="colour")
    def swatch(self, obj: Connection) -> str:
        if not obj.colour:
            return "—"
        return format_html(
            '<span style="display:inline-block;width:1em;height:1em;background:{};'
            'vertical-align:middle"></span> {}',
            obj.colour,
            obj.colour,
        )

    @admin.display(description="base URL")
    def shown_base_url(self, obj: Connection) -> str:
        return api_settings().base_url if obj.is_default else obj.base_url

    @admin.display(description="client")
    def shown_client(self, obj: Connection) -> str:
        return api_settings().CLIENT_ID if obj.is_default else obj.client_id

    @admin.display(description="settings")
    def environment(self, obj: Connection) -> str:
        config = api_settings()
        rows = [
            ("BASE_URL", config.BASE_URL),
            ("TOKEN_URL", config.TOKEN_URL),
            ("CLIENT_ID", config.CLIENT_ID),
            ("CLIENT_SECRET", "(set, not shown)" if config.CLIENT_SECRET else "(empty)"),
            ("SCOPE", config.SCOPE or "(none)"),
            ("CLIENT_AUTH", config.CLIENT_AUTH),
            ("RATE_LIMIT", config.RATE_LIMIT or "(none)"),
            *((setting, getattr(config, setting)) for setting in TUNABLES.values()),
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>POC_API_{}</th><td>{}</td></tr>", rows),
        )

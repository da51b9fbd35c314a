"""Django's error pages without a secret: ``DEFAULT_EXCEPTION_REPORTER_FILTER``.

With ``DJANGO_DEBUG=1`` (the default of ``make run``) a failing view shows every frame's
local variables, and Django's own filter only hides what ``sensitive_variables`` names, and
only while debug is off. This filter is always on, and hides by name and by value: a local
whose name looks like a secret (``token``, ``client_secret``, ``credentials``, ...) is
hidden; any other value is shown as its ``repr`` with every secret the process holds
scrubbed from it (a headers dict with ``Authorization: Bearer ...``, a settings object with
its client secret), as are the settings the page lists.
"""

import re
from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from .conf import api_settings
from .connections import known_client_secrets
from .grants import basic_credentials
from .redaction import scrub
from .tokens import all_held_secrets

_MAX_SHOWN = 4096


class _Shown:
    """A value the page prints as given (``pprint`` uses ``repr``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def held_secrets() -> tuple[str, ...]:
    config = api_settings()
    basic = basic_credentials(config).removeprefix("Basic ")
    return (config.CLIENT_SECRET, basic, *known_client_secrets(), *all_held_secrets())


class SecretsFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DATABASE_URL", re.I
    )

    def is_active(self, request: HttpRequest | None) -> bool:
        return True  # debug on is exactly when the page shows frames

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            cleansed = scrub(cleansed, held_secrets())
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        secrets = held_secrets()
        shown = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if isinstance(name, str) and self.hidden_settings.search(name):
                value = self.cleansed_substitute
            elif not (isinstance(value, str) and value == self.cleansed_substitute):
                value = _Shown(scrub(_repr(value), secrets))
            shown.append((name, value))
        return shown


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the error page
        text = f"<{type(value).__name__}: repr failed with {type(exc).__name__}>"
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"

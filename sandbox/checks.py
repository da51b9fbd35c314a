from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from sandbox import conf


def check_settings(**kwargs: object) -> list[CheckMessage]:
    """sandbox.E001: ``settings.SANDBOX`` is malformed."""
    try:
        conf.load()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint='See sandbox/conf.py; a minimal value is {"CLIENTS": {"id": "secret"}}.',
                id="sandbox.E001",
            )
        ]
    return []

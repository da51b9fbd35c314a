"""WSGI entry point, served by gunicorn (gthread workers) in production."""

import os
import sys

from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocclient.settings")

# gunicorn's "App failed to load": with it a worker makes gunicorn's master stop, instead of
# booting new workers that fail alike, forever. Any other server gets 2, as manage.py exits.
GUNICORN_APP_LOAD_ERROR = 4

# Load the settings first: a bad environment value is then one line naming the variable, not
# a traceback (see manage.py). Errors past the settings keep their tracebacks.
try:
    settings.INSTALLED_APPS  # noqa: B018 (loads the settings module)
except ImproperlyConfigured as exc:
    sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
    sys.stderr.flush()
    raise SystemExit(GUNICORN_APP_LOAD_ERROR if "gunicorn" in sys.modules else 2) from None

application = get_wsgi_application()

# Django's system checks run with manage.py's commands, not under a WSGI server: the errors
# that make a deployment unsafe (no POC_ENCRYPTION_KEY with debug off, say) stop it here too.
_errors = [
    message for message in run_checks(include_deployment_checks=False) if message.is_serious()
]
if _errors:
    for message in _errors:
        sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
    raise SystemExit(GUNICORN_APP_LOAD_ERROR if "gunicorn" in sys.modules else 2)

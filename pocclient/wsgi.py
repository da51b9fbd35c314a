"""WSGI entry point, served by gunicorn (gthread workers) in production."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocclient.settings")

application = get_wsgi_application()

"""A logging filter that puts the current request id on every record.

Used by the ``console`` handler in ``settings.LOGGING``, whose format shows it as
``%(request_id)s``. Records logged outside any request or command run show ``-``.

Two kinds of lines are written after ``RequestIdMiddleware`` has returned, when the id is no
longer current: Django's "Not Found"/"Internal Server Error" lines (their record carries the
request, which carries the id) and runserver's access line (logged by the same thread right
after the response went out: the middleware leaves the id of the request it finished last in
a thread-local for it).
"""

import logging
import threading

from .context import get_request_id

NO_REQUEST_ID = "-"
_finished = threading.local()


def remember_finished(request_id: str) -> None:
    """Called by the middleware as a request ends, for the server's access line."""
    _finished.request_id = request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            request_id = get_request_id()
            if not request_id:
                request_id = getattr(getattr(record, "request", None), "request_id", "")
            if not request_id and record.name == "django.server":
                request_id = getattr(_finished, "request_id", "")
            record.request_id = request_id or NO_REQUEST_ID
        return True

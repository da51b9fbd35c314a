"""A logging filter that puts the current request id on every record.

Used by the ``console`` handler in ``settings.LOGGING``, whose format shows it as
``%(request_id)s``. Records logged outside any request or command run show ``-``.

Two kinds of lines are written after ``RequestIdMiddleware`` has returned, when the id is no
longer current: Django's "Not Found"/"Internal Server Error" lines (their record carries the
request, which carries the id) and runserver's access line (logged by the same thread right
after the response went out: the middleware leaves the id of the request it finished last in
a thread-local for it).
"""

import atexit
import copy
import logging
import logging.handlers
import threading
from typing import Any

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


class OffThreadHandler(logging.handlers.QueueHandler):
    """Hands a record to the thread of a ``WritingListener``, which formats and writes it.

    Every API call logs a line; formatting it (a headers dict among its arguments) and
    writing it cost the caller tens of microseconds, so the caller only copies the record.
    Filters (the request id's) still run in the caller's thread, where the id is current; a
    traceback is rendered there too, while its frames are the caller's. Arguments are
    formatted later, so a caller must not change an argument after logging it (ours don't).
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        if record.exc_info:
            record.exc_text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        return record


class WritingListener(logging.handlers.QueueListener):
    """The thread that formats and writes what ``OffThreadHandler`` queues; started with the
    logging configuration, and made to write what is left when the process exits."""

    def __init__(self, queue: Any, *handlers: logging.Handler, **kwargs: Any) -> None:
        super().__init__(queue, *handlers, **kwargs)
        self.start()
        atexit.register(self.stop)


_TRACEBACKS = logging.Formatter()

"""A logging filter that puts the current request id on every record.

Used by the ``console`` handler in ``settings.LOGGING``, whose format shows it as
``%(request_id)s``. Records logged outside any request or command run show ``-``. Django logs
"Not Found"/"Internal Server Error" lines after the middleware has returned; those records
carry the request, whose ``request_id`` is used instead.
"""

import logging

from .context import get_request_id

NO_REQUEST_ID = "-"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            request_id = get_request_id()
            if not request_id:
                request_id = getattr(getattr(record, "request", None), "request_id", "")
            record.request_id = request_id or NO_REQUEST_ID
        return True

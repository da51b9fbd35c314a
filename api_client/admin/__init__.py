"""The admin: what happened to a call (exchanges), the token, and a summary of recent calls.

One module per page: ``exchanges`` (its ``changelist``, ``filters`` and ``export``),
``tokens``, and ``summary`` (with ``charts``), reached from the admin index through the
``ExchangeSummary`` proxy model. Importing the package registers them all.
"""

from . import connections, exchanges, summary, tokens  # noqa: F401 (each registers its admin)

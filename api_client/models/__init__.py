"""The app's models, a module each: the exchange log, its per-minute rollup, the tokens."""

from .connections import Connection
from .exchanges import (
    FAILED,
    PURGE_BATCH_SIZE,
    PURGE_SECONDS_PER_BATCH,
    Exchange,
    ExchangeQuerySet,
    ExchangeSummary,
    StatusClass,
)
from .limits import RatePause, RateSlot
from .rollup import ExchangeRollup
from .tokens import Token, TokenState, credential_key, mask

__all__ = [
    "FAILED",
    "PURGE_BATCH_SIZE",
    "PURGE_SECONDS_PER_BATCH",
    "Connection",
    "Exchange",
    "ExchangeQuerySet",
    "ExchangeRollup",
    "ExchangeSummary",
    "RatePause",
    "RateSlot",
    "StatusClass",
    "Token",
    "TokenState",
    "credential_key",
    "mask",
]

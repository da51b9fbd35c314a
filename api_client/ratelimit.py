"""One rate limit for every process and host, and the pauses a provider asks for.

``POC_API_RATE_LIMIT`` holds rules, separated by commas: ``40/s`` (every call), ``POST
items=15/min`` (a method and a path pattern, ``*`` for any characters), ``items/*=750/min``
(a pattern, any method). Units: ``s``, ``min``, ``h``, ``day``. A call obeys every rule that
matches it: never more than N calls in any window of the rule's length, counted as the
strictest provider would (a sliding window over the moments calls were allowed to start),
and so started as soon as that allows.

Shared through the database, like the token's lease. A call takes its place in one short
transaction that counts the rule's window and inserts its slot (``RateSlot``): on SQLite the
transaction takes the write lock as it begins, so processes take turns; on PostgreSQL a
transaction-scoped advisory lock per rule does, and the clock read is the database's, so
hosts with skewed clocks still count one window. The clock is read after the lock is held,
so the stored moments are the real ones (the limiter has nothing to compute), and a window is
counted with a small margin for the moment between permission and sending.

A provider that says its quota is spent pauses every sender to it (``RatePause``), across
processes: a 429 (its ``Retry-After``, else one second), ``X-RateLimit-Remaining: 0`` with
``X-RateLimit-Reset``, ``RateLimit: ...remaining=0, reset=N`` (or ``...;r=0;t=N``),
``X-Knewton-Rate-Delay: N``. No call starts until the pause ends; calls already in flight
finish. A pause is clamped to ``MAX_PAUSE``: a hostile API may not stop us for a year.
Without rules, a process reads the pauses at most every ``PAUSE_READ_EVERY`` seconds (a pause
it saw itself holds at once), so an unlimited call costs no database read: another process's
pause reaches it that much later, and meanwhile the provider's own 429 tells it too.

Not pyrate-limiter (4.x): its SQLite bucket is safe across threads or (with a file lock)
processes, keeps its own connections and tables outside Django's transactions and migrations,
and its sliding window holds only by a safety margin (it stores computed, not read, times).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import connection, transaction

from .exceptions import RetryLaterError
from .models.limits import RatePause, RateSlot

logger = logging.getLogger(__name__)

UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
         "day": 86400}  # fmt: skip
MARGIN = 0.05  # seconds added to a window: between permission and the request leaving
MAX_PAUSE = 900.0
PAUSE_WITHOUT_RETRY_AFTER = 1.0
PAUSE_READ_EVERY = 1.0
_RULE = re.compile(
    r"^\s*(?:(?P<method>[A-Z]+)\s+)?(?:(?P<pattern>[^=\s]+)\s*=\s*)?"
    r"(?P<limit>\d{1,9})\s*/\s*(?P<count>\d{1,6}\s*)?(?P<unit>[a-z]+)\s*$",
    re.ASCII,  # digits are 0-9: int() would take "٤٠" for 40
)


class RateLimitSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    method: str | None
    pattern: str | None
    limit: int
    seconds: float
    key: str = ""

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.pattern is None:
            return True
        route = path.split("?", 1)[0].lstrip("/")
        return fnmatch.fnmatchcase(route, self.pattern.lstrip("/"))


def parse_rules(text: str, scope: str = "") -> tuple[Rule, ...]:
    """The rules of a ``POC_API_RATE_LIMIT`` value; ``RateLimitSyntaxError`` names a bad one."""
    rules: dict[str, Rule] = {}
    for part in filter(str.strip, text.split(",")):
        found = _RULE.match(part)
        unit = found and UNITS.get(found["unit"])
        count = int((found["count"] or "1").strip()) if found else 0
        if not found or not unit or int(found["limit"]) < 1 or count < 1:
            raise RateLimitSyntaxError(
                f"{part.strip()!r} is not a rate limit; write N/UNIT (40/s, 900/min), "
                "optionally after a method and a path pattern (POST items/*=15/min)."
            )
        written, limit = part.strip(), int(found["limit"])
        key = hashlib.sha256(f"{scope}\n{written}".encode()).hexdigest()
        # A rule written twice is one rule: twice, each call would take two of its places.
        rule = Rule(written, found["method"], found["pattern"], limit, unit * count, key)
        rules.setdefault(key, rule)
    return tuple(rules.values())


def pause_asked(status: int, headers: Mapping[str, str]) -> float:
    """Seconds the provider asks every sender to wait (0 when it does not); never trusted
    past ``MAX_PAUSE``, never raising on a malformed value."""
    lower = {name.lower(): value for name, value in headers.items()}
    asked = 0.0
    if status == 429:
        asked = _seconds(lower.get("retry-after")) or PAUSE_WITHOUT_RETRY_AFTER
    if _number(lower.get("x-ratelimit-remaining")) == 0:
        asked = max(asked, _reset(lower.get("x-ratelimit-reset")) or PAUSE_WITHOUT_RETRY_AFTER)
    # "limit=10, remaining=0, reset=30" (the draft's first form) or '"default";r=0;t=30'.
    fields = {
        name.strip(): value
        for name, _, value in (
            item.partition("=")
            for item in re.split(r"[,;]", lower.get("ratelimit", "")[:1000])
            if "=" in item
        )
    }
    remaining = _number(fields.get("remaining", fields.get("r")))
    if remaining == 0:
        reset = _number(fields.get("reset", fields.get("t")))
        asked = max(asked, reset or PAUSE_WITHOUT_RETRY_AFTER)
    asked = max(asked, _number(lower.get("x-knewton-rate-delay")) or 0.0)
    return min(asked, MAX_PAUSE)


def _number(value: str | None) -> float | None:
    if value is None or len(value) > 20:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds(value: str | None) -> float | None:
    """``Retry-After``: seconds or an HTTP date, both ASCII; None when malformed."""
    from .transport.retries import retry_after_seconds

    if value is None or not value.isascii():
        return None  # "²" and "٢" are digits to str.isdigit, not to float() or to HTTP
    return retry_after_seconds(value)


def _reset(value: str | None) -> float | None:
    """``X-RateLimit-Reset``: seconds from now, or (GitHub's way) an epoch moment."""
    number = _number(value)
    if number is None:
        return None
    return max(0.0, number - time.time()) if number > 1e9 else number


class RateLimiter:
    """The limits and pauses of one API (``scope``: its base URL)."""

    def __init__(
        self,
        rules: tuple[Rule, ...],
        scope: str,
        max_wait: float,
        settings: str = "POC_API_RATE_LIMIT, POC_API_RETRY_AFTER_MAX, POC_API_DEADLINE",
    ) -> None:
        self.rules = rules
        self.settings = settings  # what a refusal tells a person to look at
        self.scope = hashlib.sha256(scope.encode()).hexdigest()
        self.max_wait = max_wait  # longer than this, a call fails with RetryLaterError
        self._reserved = 0
        self._paused_until = 0.0  # the latest pause known to this process (epoch seconds)
        self._pauses_read_at = -math.inf  # monotonic, when the last read of them began
        self._known = threading.Lock()  # guards _paused_until: it only ever grows
        self._reading = threading.Lock()  # one thread reads the pauses; the others wait for it

    def acquire(self, method: str, path: str, *, within: float) -> None:
        """Wait until a call may start; at most ``within`` seconds (its deadline) or
        ``max_wait``, else ``RetryLaterError`` saying how long (nothing was sent)."""
        rules = [rule for rule in self.rules if rule.matches(method, path)]
        started = time.monotonic()
        while True:
            wait = self._take(rules)
            if wait <= 0:
                return
            left = min(within, self.max_wait) - (time.monotonic() - started)
            if wait > left:
                raise RetryLaterError(
                    f"The API's rate limit or pause lets the next call start in {wait:.1f} s, "
                    f"longer than this call may wait ({self.settings}); nothing was sent.",
                    retry_after=wait,
                )
            time.sleep(wait)

    def observe(self, status: int, headers: Mapping[str, str]) -> float:
        """Pause every sender if the answer says the quota is spent; returns the pause."""
        asked = pause_asked(status, headers)
        if asked > 0:
            until = time.time() + asked
            self._learn(until)
            reason = f"status {status}"
            with transaction.atomic():
                _, made = RatePause.objects.get_or_create(
                    key=self.scope, defaults={"until": until, "reason": reason}
                )
                if not made:
                    # Compared in the UPDATE, not in Python: two processes that read the same
                    # pause would each write theirs, and the shorter could win (PostgreSQL).
                    RatePause.objects.filter(key=self.scope, until__lt=until).update(
                        until=until, reason=reason
                    )
            logger.warning("The API asks for a pause of %.1f s (status %d)", asked, status)
        return asked

    def _take(self, rules: list[Rule]) -> float:
        """0 when a place was taken for the call, else the seconds to wait for one."""
        if not rules:  # only a pause can hold the call back: no lock, and rarely a read
            self._read_pauses()
            return max(self._paused_until - time.time(), 0.0)
        with transaction.atomic():
            now = self._locked_now(rules)
            until = RatePause.objects.filter(key=self.scope).values_list("until", flat=True)
            wait = max((u - now for u in until), default=0.0)
            for rule in rules:
                # The window is full when it holds a limit-th latest call: the next may start
                # once that one has left it (one row read, however large the limit).
                window = rule.seconds + MARGIN
                nth = (
                    RateSlot.objects.filter(key=rule.key, at__gt=now - window)
                    .order_by("-at")
                    .values_list("at", flat=True)[rule.limit - 1 : rule.limit]
                )
                for at in nth:
                    wait = max(wait, at + window - now)
            if wait > 0:
                return wait
            RateSlot.objects.bulk_create([RateSlot(key=rule.key, at=now) for rule in rules])
            self._reserved += 1
            if self._reserved % 200 == 0:  # forget slots no window can see any more
                for rule in rules:
                    RateSlot.objects.filter(key=rule.key, at__lt=now - rule.seconds - 60).delete()
        return 0.0

    def _read_pauses(self) -> None:
        """Learn the pauses other processes wrote, if not read in the last PAUSE_READ_EVERY
        seconds. Threads that find them due wait for the one reading them: each would
        otherwise go on from what this process knew before, a pause written since unseen."""
        if time.monotonic() - self._pauses_read_at < PAUSE_READ_EVERY:
            return
        with self._reading:
            began = time.monotonic()
            if began - self._pauses_read_at < PAUSE_READ_EVERY:
                return  # another thread read them while this one waited
            until = RatePause.objects.filter(key=self.scope).values_list("until", flat=True)
            self._learn(*until)
            self._pauses_read_at = began

    def _learn(self, *until: float) -> None:
        with self._known:
            self._paused_until = max((self._paused_until, *until))

    @staticmethod
    def _locked_now(rules: list[Rule]) -> float:
        if connection.vendor != "postgresql":
            return time.time()  # SQLite's IMMEDIATE transaction holds the lock already
        with connection.cursor() as cursor:
            for key in sorted(rule.key for rule in rules):  # one order: no deadlock
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
            cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
            return float(cursor.fetchone()[0])

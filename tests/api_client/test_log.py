"""The request id in every log line: the filter, and the format in settings."""

import io
import logging
import re

import pytest
from django.conf import settings

from api_client.context import request_id_scope
from api_client.log import OffThreadHandler, RequestIdFilter, remember_finished

ORIGINAL = "%(asctime)s %(thread)d %(levelname)s %(name)s %(funcName)s %(lineno)d"


def record(name: str = "api_client.test", **extra) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 10, "hello %s", ("there",), None)
    made.__dict__.update(extra)
    return made


def formatted(made: logging.LogRecord) -> str:
    RequestIdFilter().filter(made)
    return logging.Formatter(settings.LOGGING["formatters"]["poc"]["format"]).format(made)


def test_the_format_keeps_the_original_fields_and_adds_the_id_before_the_message():
    fmt = settings.LOGGING["formatters"]["poc"]["format"]

    assert fmt == ORIGINAL + " %(request_id)s %(message)s"


def test_a_line_logged_in_a_scope_shows_its_id():
    with request_id_scope("run-7"):
        line = formatted(record())

    assert re.fullmatch(r"\S+ \S+ \d+ INFO api_client\.test \S+ 10 run-7 hello there", line)


def test_a_line_logged_outside_any_request_shows_a_dash():
    assert formatted(record()).endswith(" 10 - hello there")


def test_a_line_about_a_finished_request_uses_the_request_s_id():
    class FinishedRequest:
        request_id = "req-9"

    assert " req-9 hello there" in formatted(record("django.request", request=FinishedRequest()))


def test_the_dev_server_access_line_uses_the_id_of_the_request_just_finished():
    remember_finished("req-10")
    try:
        assert " req-10 " in formatted(record("django.server", request=object()))
        assert " - " in formatted(record("api_client.other"))
    finally:
        remember_finished("")


def test_an_explicit_request_id_is_kept():
    with request_id_scope("outer"):
        assert " mine hello" in formatted(record(request_id="mine"))


def root_writers() -> list[logging.Handler]:
    """The root logger's handlers, and those its off-thread handler's listener writes with."""
    found = []
    for handler in logging.getLogger().handlers:
        listener = getattr(handler, "listener", None)
        found += [handler, *(listener.handlers if listener else ())]
    return found


def console_handler() -> logging.StreamHandler:
    [handler] = [h for h in root_writers() if "request_id" in getattr(h.formatter, "_fmt", "")]
    return handler


def written() -> None:
    """Wait until the listener thread has written every line queued so far."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, OffThreadHandler):
            handler.queue.join()


def test_lines_are_formatted_off_the_callers_thread_but_carry_its_request_id():
    [queued] = [h for h in logging.getLogger().handlers if isinstance(h, OffThreadHandler)]
    handler = console_handler()
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        with request_id_scope("off-1"):
            logging.getLogger("api_client.test").warning("hello %s", {"a": 1})
        written()
    finally:
        handler.setStream(previous)

    assert any(isinstance(f, RequestIdFilter) for f in queued.filters)
    assert re.search(
        r" WARNING api_client\.test \S+ \d+ off-1 hello \{'a': 1\}$", buffer.getvalue()
    )


def test_the_console_handler_applies_the_filter():
    assert any(isinstance(f, RequestIdFilter) for f in console_handler().filters)


def test_django_s_loggers_write_only_through_the_console_handler():
    """Django's defaults give "django" a handler of its own, printing lines without the id."""
    django = logging.getLogger("django")
    # (pytest adds capturing handlers of its own, of other classes)
    assert not [h for h in django.handlers if type(h) is logging.StreamHandler]
    assert django.propagate
    assert console_handler() in logging.getLogger("django.server").handlers


@pytest.mark.django_db
def test_a_not_found_line_shows_the_request_id(client):
    handler = console_handler()
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        client.get("/no-such-page", headers={"X-Request-ID": "nf-1"})
        written()
    finally:
        handler.setStream(previous)

    [line] = [line for line in buffer.getvalue().splitlines() if "/no-such-page" in line]
    assert re.search(r" WARNING django\.request \S+ \d+ nf-1 Not Found: /no-such-page$", line)

"""Checks that keep bad input from reaching the network.

Every function raises ``InvalidRequestError`` with ``field`` set to the input at fault and a
message that says what to change. Paths are confined to the base URL: a path is always taken
as relative to it (a leading slash does not escape it), and absolute URLs, scheme-relative
URLs, backslashes and ``.``/``..`` segments, percent-encoded or not, are refused.
"""

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from .exceptions import InvalidRequestError

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Methods a call may be sent twice with: the API's state is the same after one or after two.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_HEADERS = 50
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 8192
MAX_PATH = 2048
MAX_JSON_DEPTH = 100
# Headers the client owns: credentials, framing and routing are not the caller's to set.
MANAGED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "cookie",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs except HTAB
_SENDABLE_IN_VALUE = re.compile(r"[\x00-\xff]*")  # http.client encodes values as ISO-8859-1
_FORBIDDEN_IN_PATH = re.compile(r"[\x00-\x20\x7f\\#]")
_MAX_DECODES = 5
_FORBIDDEN_DECODED = re.compile(r"[\x00-\x1f\x7f\\]")  # some servers read \ as /


def clean_method(method: Any) -> str:
    upper = method.strip().upper() if isinstance(method, str) else ""
    if upper not in METHODS:
        raise InvalidRequestError(
            f"Unknown method {method!r}; use one of {', '.join(METHODS)}.", field="method"
        )
    return upper


def confine_path(base_url: str, path: Any) -> tuple[str, str]:
    """``(absolute_url, relative_path)`` for ``path`` under ``base_url``, or raise."""
    if not isinstance(path, str):
        raise InvalidRequestError("The path must be a string.", field="path")
    if len(path) > MAX_PATH:
        raise InvalidRequestError(f"The path is longer than {MAX_PATH} characters.", field="path")
    if _FORBIDDEN_IN_PATH.search(path):
        raise InvalidRequestError(
            "The path contains whitespace, a control character, a backslash or '#'; "
            "percent-encode such characters.",
            field="path",
        )
    try:
        parts = urlsplit(path)
    except ValueError:  # "http://host[" and the like: not a relative path either way
        parts = None
    if parts is None or parts.scheme or parts.netloc or path.startswith("//"):
        raise InvalidRequestError(
            f"The path must be relative to the API base URL {base_url}; absolute URLs are refused.",
            field="path",
        )
    route, _, query = path.partition("?")
    decoded = route
    for _ in range(_MAX_DECODES):  # undo double (or deeper) encoding before judging segments
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    else:
        raise InvalidRequestError(
            f"The path is percent-encoded more than {_MAX_DECODES - 1} times over; send it "
            "encoded once.",
            field="path",
        )
    # A segment is judged without its ";parameters": Tomcat and others read "..;x" as "..".
    if _FORBIDDEN_DECODED.search(decoded) or any(
        segment.split(";", 1)[0] in (".", "..") for segment in decoded.split("/")
    ):
        raise InvalidRequestError(
            "The path may not contain '.' or '..' segments, or encoded backslashes or control "
            "characters (it must stay under the API base URL).",
            field="path",
        )
    relative = route.lstrip("/") + (f"?{query}" if query else "")
    url = base_url + relative
    # Belt and braces: whatever the checks above missed, the result must still be under base.
    base, final = urlsplit(base_url), urlsplit(url)
    if (final.scheme, final.netloc) != (base.scheme, base.netloc) or not final.path.startswith(
        base.path
    ):
        raise InvalidRequestError("The path leaves the API base URL.", field="path")
    return url, "/" + relative


def clean_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidRequestError("Headers must be an object of names to values.", field="headers")
    if len(headers) > MAX_HEADERS:
        raise InvalidRequestError(
            f"Too many headers ({len(headers)}); at most {MAX_HEADERS} are allowed.",
            field="headers",
        )
    cleaned = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name) or len(name) > MAX_HEADER_NAME:
            raise InvalidRequestError(
                f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~, "
                f"at most {MAX_HEADER_NAME} characters).",
                field="headers",
            )
        if name.lower() in MANAGED_HEADERS:
            raise InvalidRequestError(
                f"The {name} header is managed by pocclient and cannot be set.", field="headers"
            )
        if not isinstance(value, str):
            raise InvalidRequestError(f"The value of {name} must be a string.", field="headers")
        if _FORBIDDEN_IN_VALUE.search(value) or len(value) > MAX_HEADER_VALUE:
            raise InvalidRequestError(
                f"The value of {name} contains a line break or control character, or is "
                f"longer than {MAX_HEADER_VALUE} characters.",
                field="headers",
            )
        if not _SENDABLE_IN_VALUE.fullmatch(value):
            raise InvalidRequestError(
                f"The value of {name} contains characters an HTTP header cannot carry (only "
                "ISO-8859-1 can be sent); percent-encode them.",
                field="headers",
            )
        cleaned[name] = value.strip()
    return cleaned


def clean_query(query: Any) -> list[tuple[str, str]]:
    """Query parameters as pairs; a value may be a string, a number or a list of them."""
    if query is None:
        return []
    if not isinstance(query, Mapping):
        raise InvalidRequestError("Query must be an object of names to values.", field="query")
    pairs = []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise InvalidRequestError(
                    f"Query parameter {name!r} must be a string, a number or a list of them.",
                    field="query",
                )
            pairs.append((str(name), str(item)))
    return pairs


def encode_json(value: Any, *, max_bytes: int) -> bytes:
    if nesting_exceeds(value, MAX_JSON_DEPTH):
        raise InvalidRequestError(
            f"The body is nested more than {MAX_JSON_DEPTH} levels deep.", field="json"
        )
    try:
        body = json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"The body is not valid JSON: {exc}.", field="json") from None
    if len(body) > max_bytes:
        raise InvalidRequestError(
            f"The body is {len(body)} bytes; the limit is {max_bytes} (POC_API_MAX_REQUEST_BYTES).",
            field="json",
        )
    return body


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether lists and objects in ``value`` nest deeper than ``limit``. Counted without
    recursion: a body nested a thousand levels deep would otherwise make the JSON encoder, or
    the redaction of the exchange log after the call was sent, raise RecursionError."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False

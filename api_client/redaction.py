"""Redaction of what we store, log and show: credentials never leave the process.

By name. Headers: ``Authorization`` keeps its scheme (``Bearer [redacted]``) so the log still
shows how a call was authenticated; cookies and API-key headers are replaced whole. Bodies:
JSON and form fields whose names look like secrets (token, secret, password, ...) are replaced
at any depth.

By value. The literal values of every secret pocclient holds (``TokenManager.held_secrets``:
the client secret, the Basic credentials, the access and refresh tokens) are scrubbed from
whatever text remains, in the forms an API might echo them: as they are, JSON- or
``repr``-escaped, percent-encoded and base64-encoded. A JSON body is decoded before it is
scrubbed, so a token written in ``\\u`` escapes is found too.

Never raises on a body: JSON nested deeper than Python's stack goes is redacted as text, and
what is stored is made storable (no NUL, no lone surrogate, headers cut to a sane length).
"""

import base64
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

REDACTED = "[redacted]"
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_SENSITIVE = (
    r"token|secret|password|passwd|api[-_]?key|authorization|credential|assertion|code_verifier"
)
_SENSITIVE_KEY = re.compile(_SENSITIVE, re.IGNORECASE)
# A JSON member whose name looks like a secret, for bodies too deep to decode.
_SENSITIVE_MEMBER = re.compile(
    rf'("[^"\\]*(?:{_SENSITIVE})[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)
_FORM = "application/x-www-form-urlencoded"
# Secrets shorter than this are not scrubbed literally: replacing "a" everywhere helps nobody.
_MIN_SCRUB_LENGTH = 8
MAX_HEADER_VALUE = 8192  # characters of a header value kept in the log
MAX_HEADERS = 100


def is_sensitive_key(name: str) -> bool:
    return bool(_SENSITIVE_KEY.search(name))


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers with credentials replaced by name, secrets scrubbed by value, and cut to a
    length the log can hold."""
    secrets = tuple(secrets)
    redacted = {}
    for name, value in list(headers.items())[:MAX_HEADERS]:
        lower = name.lower()
        if lower in ("authorization", "proxy-authorization") and " " in value:
            scheme = value.split(" ", 1)[0]
            redacted[name] = f"{scheme} {REDACTED}"
        elif lower in SENSITIVE_HEADERS or is_sensitive_key(lower):
            redacted[name] = REDACTED
        else:
            value = scrub(value, secrets)
            if len(value) > MAX_HEADER_VALUE:
                value = value[:MAX_HEADER_VALUE] + f"… ({len(value)} characters)"
            redacted[name] = value
    return redacted


def redact_data(value: Any) -> Any:
    """A copy of decoded JSON with secret-looking fields replaced, at any depth."""
    if isinstance(value, dict):
        return {
            k: REDACTED if is_sensitive_key(str(k)) and v not in (None, "") else redact_data(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    return value


def redact_body(
    body: bytes | str | None, content_type: str = "", secrets: Iterable[str] = ()
) -> str:
    """A body as text, with secret fields redacted when it is JSON or a form, and the given
    secrets scrubbed by value."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == _FORM:
        pairs = parse_qsl(text, keep_blank_values=True)
        text = urlencode([(k, REDACTED if is_sensitive_key(k) else v) for k, v in pairs])
    elif "json" in media_type or text.lstrip()[:1] in ("{", "["):
        text = _redact_json_text(text)
    return scrub(text, secrets)


def redact_json(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Decoded JSON with secret fields redacted and secrets scrubbed from every string, for
    showing an answer that was never stored (the console's live response)."""
    try:
        text = json.dumps(redact_data(value), ensure_ascii=False)
        return json.loads(scrub(text, secrets))
    except (RecursionError, ValueError):
        return scrub(str(value)[:10_000], secrets)


def _redact_json_text(text: str) -> str:
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    except RecursionError:  # deeper than the decoder goes: redact what names say, as text
        return _SENSITIVE_MEMBER.sub(rf'\1"{REDACTED}"', text)
    try:
        return json.dumps(redact_data(decoded), ensure_ascii=False)
    except RecursionError:
        return _SENSITIVE_MEMBER.sub(rf'\1"{REDACTED}"', text)


def redact_url(url: str) -> str:
    """``url`` with the values of secret-looking query parameters replaced."""
    if "?" not in url:
        return url
    route, _, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(is_sensitive_key(k) for k, _ in pairs):
        return url
    return route + "?" + urlencode([(k, REDACTED if is_sensitive_key(k) else v) for k, v in pairs])


@lru_cache(maxsize=256)
def _forms(secret: str) -> tuple[str, ...]:
    """The ways ``secret`` may appear in text: as it is, escaped or encoded (longest first,
    so that a form containing another is replaced whole)."""
    raw = secret.encode("utf-8", errors="surrogatepass")
    found = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return tuple(sorted((f for f in found if len(f) >= _MIN_SCRUB_LENGTH), key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of the given secrets, in any of their forms, replaced."""
    for secret in secrets:
        if not secret or len(secret) < _MIN_SCRUB_LENGTH:
            continue
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, REDACTED)
    return text


def storable(text: str) -> str:
    """``text`` as every database can store it: NUL (PostgreSQL refuses it) and lone
    surrogates (not UTF-8) replaced with U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    return text


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {storable(name): storable(value) for name, value in headers.items()}


def truncate(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True

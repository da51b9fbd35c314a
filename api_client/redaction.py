"""Redaction of what we store and log: credentials never leave the process.

Headers: ``Authorization`` keeps its scheme (``Bearer [redacted]``) so the log still shows how
a call was authenticated; cookies and API-key headers are replaced whole. Bodies: JSON and
form fields whose names look like secrets (token, secret, password, ...) are replaced at any
depth. As a last line of defence the literal values of the secrets we hold are scrubbed from
whatever text remains, so an API that echoes a token in an unexpected place is covered too.
"""

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "[redacted]"
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_SENSITIVE_KEY = re.compile(
    r"token|secret|password|passwd|api[-_]?key|authorization|credential|assertion|code_verifier",
    re.IGNORECASE,
)
_FORM = "application/x-www-form-urlencoded"
# Secrets shorter than this are not scrubbed literally: replacing "a" everywhere helps nobody.
_MIN_SCRUB_LENGTH = 8


def is_sensitive_key(name: str) -> bool:
    return bool(_SENSITIVE_KEY.search(name))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    redacted = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in ("authorization", "proxy-authorization") and " " in value:
            scheme = value.split(" ", 1)[0]
            redacted[name] = f"{scheme} {REDACTED}"
        elif lower in SENSITIVE_HEADERS or is_sensitive_key(lower):
            redacted[name] = REDACTED
        else:
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


def redact_body(body: bytes | str | None, content_type: str = "") -> str:
    """A body as text, with secret fields redacted when it is JSON or a form."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == _FORM:
        pairs = parse_qsl(text, keep_blank_values=True)
        return urlencode([(k, REDACTED if is_sensitive_key(k) else v) for k, v in pairs])
    if "json" in media_type or text.lstrip()[:1] in ("{", "["):
        try:
            decoded = json.loads(text)
        except ValueError:
            return text
        return json.dumps(redact_data(decoded), ensure_ascii=False)
    return text


def redact_url(url: str) -> str:
    """``url`` with the values of secret-looking query parameters replaced."""
    if "?" not in url:
        return url
    route, _, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(is_sensitive_key(k) for k, _ in pairs):
        return url
    return route + "?" + urlencode([(k, REDACTED if is_sensitive_key(k) else v) for k, v in pairs])


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every literal occurrence of the given secrets replaced."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SCRUB_LENGTH and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def truncate(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True

"""An API that misbehaves on request, to prove the client survives a hostile server.

The sandbox and bench/stub_api.py answer the way a client hopes; a real API, a proxy in front
of it or whatever answers in its place may not. This server answers with decompression bombs,
endless or dripping bodies, headers no parser should accept, the caller's credentials
reflected back, spent rate limits, and token responses that are wrong in every way a client
could trust.

Two ways to run it, loopback only, HTTP/1.1 keep-alive, one daemon thread per connection:

- in a thread of the test process: ``with serve_hostile(token_mode="hang") as server:``, then
  ``server.url``, ``server.received``, ``server.grants``, ``server.scopes``; change the
  configuration with ``server.configure(...)`` (or by assigning ``server.token_mode`` etc.);
- in its own OS process, for tests that SIGKILL the client: ``with hostile_process(log) as
  url:``, or ``python -m tests.helpers.hostile PORT --log FILE [--config JSON]``. Every request
  is appended to FILE as a JSON line and fsynced *before* it is answered, so the log proves
  what reached the API. ``POST /_control`` with a JSON object of configuration keys changes
  the configuration (and answers the configuration and token counts); ``GET /_received``
  answers the records of this process's requests.

Behaviours are chosen by the first path segment that names one, under any prefix
(``/api/bomb``, ``/api/always-401/items``), with parameters in the query string:

- ``bomb?mb=200&encoding=gzip,gzip``: zeros compressed once per listed coding (gzip or
  deflate; ``Content-Encoding: gzip, gzip`` is what urllib3 decodes as a chain), cached;
- ``huge?mb=500[&chunked=1][&status=200]``: that many zeros, streamed, with Content-Length
  or chunked;
- ``drip-body?interval=2&length=1000000``: headers at once, then a byte per interval;
- ``drip-headers?interval=1``: the status line, then a header line per interval, forever;
- ``slow?delay=0``: ``{"ok": true}`` after the delay;
- ``deep-json?depth=5000``, ``invalid-utf8``, ``nul[?raw=1]``, ``long-header?length=100000``,
  ``many-headers?count=200``: bodies and headers that parsers choke on;
- ``echo-secrets[?status=200]``: the request's Authorization, and its bearer token, reflected
  in response headers and in the JSON body in many spellings (see ``behave_echo_secrets``);
- ``status?code=503[&retry_after=3600]``, ``rate-spent?reset=60``, ``too-many?seconds=3600``,
  ``always-401``: refusals; ``reset``: reads the request, then resets the connection (RST);
- anything else under ``/api/``: ``{"ok": true, "method": ..., "path": ...}``.

``POST .../token`` is an OAuth2 token endpoint (client_credentials and refresh_token grants,
client authentication by HTTP Basic or in the form) whose answers ``token_mode`` chooses; see
``CONFIG`` and ``TOKEN_MODES``. A storm (``storm_after``, off by default) refuses every
request but the token endpoint's for ``storm_seconds``, once ``storm_after`` of them were
answered as usual: ``storm_status`` with ``storm_headers`` (429 with ``Retry-After: 2``), the
moments of each refusal kept in ``server.refusals``, as rate-limit tests need. Drips, delays
and hangs end when the server stops, which also cuts every open connection, so leaving
``serve_hostile`` never waits for a handler.
"""

import argparse
import base64
import json
import math
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, quote, unquote_plus, urlsplit

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
BODY_KEPT = 4096  # bytes of each request body kept in the records
LOGGED_HEADERS = (
    "Idempotency-Key",
    "X-Request-ID",
    "Authorization",
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "User-Agent",
)

# Access tokens for token_mode="bad_token": each breaks a header, a log line or an encoding.
BAD_TOKENS = {
    "cr": "hostile\rX-Injected: cr",
    "lf": "hostile\nX-Injected: lf",
    "crlf": "hostile\r\nX-Injected: crlf",
    "non_latin1": "tok\u20ac-hostile",
    "empty": "",
}
TOKEN_MODES = (
    "normal",
    "expires_in",
    "huge_token_type",
    "echo_error",
    "bad_token",
    "hang",
    "status",
)
CONFIG = {
    "token_mode": "normal",
    "client_id": "hostile-client",  # the credentials the token endpoint accepts
    "client_secret": "hostile-secret-0123456789",
    "issue_refresh": False,  # grants include a refresh_token (all stay valid)
    # token_mode="expires_in": a str is JSON text put in the answer as-is ("1e30", "true",
    # '"abc"', "-5", "null", "1e400"); other values are JSON-encoded; None (null through
    # /_control) leaves the key out.
    "expires_in": "1e30",
    "token_type_length": 200_000,  # token_mode="huge_token_type"
    "bad_token": "crlf",  # token_mode="bad_token": a key of BAD_TOKENS
    "token_status": 500,  # token_mode="status": this status, with this body
    "token_body": '{"error": "server_error"}',
    # A storm of refusals: None (off), or how many API requests (any but the token
    # endpoint's) are answered as usual before it begins; it lasts storm_seconds from the
    # arrival of its first refused request.
    "storm_after": None,
    "storm_seconds": 2.0,
    "storm_status": 429,
    "storm_headers": {"Retry-After": "2"},
}
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}  # deflate: the zlib format
ZEROS = bytes(64 * 1024)

_bombs: dict[tuple[int, tuple[str, ...]], bytes] = {}
_bombs_lock = threading.Lock()


def bomb_body(size: int, codings: tuple[str, ...] = ("gzip", "gzip")) -> bytes:
    """``size`` zero bytes compressed by each coding in turn; computed once (200 MB: ~1 s)."""
    with _bombs_lock:  # concurrent first requests wait for one compression, not run their own
        if (size, codings) not in _bombs:
            compressor = zlib.compressobj(9, zlib.DEFLATED, WBITS[codings[0]])
            block = memoryview(bytes(MiB))
            parts = [
                compressor.compress(block[: min(MiB, size - start)])
                for start in range(0, size, MiB)
            ]
            body = b"".join([*parts, compressor.flush()])
            for coding in codings[1:]:
                compressor = zlib.compressobj(9, zlib.DEFLATED, WBITS[coding])
                body = compressor.compress(body) + compressor.flush()
            _bombs[size, codings] = body
        return _bombs[size, codings]


@dataclass(frozen=True)
class Received:
    """A request as it arrived, recorded once its body is read and before it is answered.

    ``headers`` keeps the names as sent (and the last of duplicates): ``header()`` looks one
    up whatever its case.
    """

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body_length: int
    body: bytes  # the first BODY_KEPT bytes
    time: float  # time.monotonic() when its headers had arrived
    wall_time: float

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def as_json(self) -> dict[str, object]:
        """What the log file and ``GET /_received`` hold: selected headers only."""
        headers = {name: self.header(name) for name in LOGGED_HEADERS}
        return {
            "method": self.method,
            "path": self.path,
            "headers": {name: value for name, value in headers.items() if value is not None},
            "body_length": self.body_length,
            "body": self.body.decode("utf-8", "backslashreplace"),
            "time": self.wall_time,
            "monotonic": self.time,
        }


class BadParameter(ValueError):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: "HostileServer"

    def _handle(self) -> None:
        arrived, wall = time.monotonic(), time.time()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        self.query = {name: values[-1] for name, values in query.items()}
        segments = [segment for segment in parts.path.split("/") if segment]
        is_token = self.command == "POST" and segments[-1:] == ["token"]
        is_control = parts.path in ("/_control", "/_received")
        length, body = self._read_body(MiB if is_token or is_control else BODY_KEPT)
        if is_control:
            self._control(parts.path, body)
            return
        headers = dict(self.headers.items())
        self.server.record(
            Received(self.command, self.path, headers, length, body[:BODY_KEPT], arrived, wall)
        )
        if not is_token and self.server.storming(arrived):
            status, extra = self.server.storm_status, self.server.storm_headers
            self.server.refused(arrived)
            self._json(status, {"error": "storm", "status": status}, list(extra.items()))
            return
        behaviour = next((segment for segment in segments if segment in BEHAVIOURS), None)
        try:
            if is_token:
                self._token(body)
            elif behaviour:
                getattr(self, "behave_" + behaviour.replace("-", "_"))()
            elif segments[:1] == ["api"]:
                self._json(200, {"ok": True, "method": self.command, "path": self.path})
            else:
                self._json(404, {"error": "not_found", "path": self.path})
        except BadParameter as error:  # raised before anything is written
            self._json(400, {"error": "bad_parameter", "error_description": str(error)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- plumbing

    def _body_pieces(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while size := int(self._line().split(b";")[0], 16):
                yield self.rfile.read(size)
                self._line()
            while self._line().strip():  # trailer fields
                pass
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(remaining, len(ZEROS)))
            if not piece:
                raise ConnectionResetError("the client closed the connection mid-body")
            remaining -= len(piece)
            yield piece

    def _line(self) -> bytes:
        line = self.rfile.readline(1024)
        if not line:
            raise ConnectionResetError("the client closed the connection mid-body")
        return line

    def _read_body(self, kept: int) -> tuple[int, bytes]:
        """Read the whole request body (so keep-alive goes on); its length and first bytes."""
        length, head = 0, bytearray()
        for piece in self._body_pieces():
            length += len(piece)
            head += piece[: max(0, kept - len(head))]
        return length, bytes(head)

    def _number(self, name: str, default: float) -> float:
        try:
            value = float(self.query.get(name, default))
        except ValueError:
            raise BadParameter(f"{name} must be a number") from None
        if not math.isfinite(value) or value < 0:
            raise BadParameter(f"{name} must be a finite number >= 0")
        return value

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, unless the server stops first: False if it did."""
        return not self.server.stopping.wait(seconds)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: object, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _abandon(self) -> None:
        """End the exchange without (finishing) an answer: the connection cannot be reused."""
        self.close_connection = True

    # -- behaviours: behave_NAME answers a path with the segment NAME (dashes for underscores)

    def behave_bomb(self) -> None:
        size = int(self._number("mb", 200) * MiB)
        codings = tuple(c.strip() for c in self.query.get("encoding", "gzip, gzip").split(","))
        if not all(coding in WBITS for coding in codings):
            raise BadParameter("encoding must list gzip and deflate only")
        body = bomb_body(size, codings)
        headers = [("Content-Encoding", ", ".join(codings)), ("X-Inflated-Length", str(size))]
        self._send(200, body, headers)

    def behave_huge(self) -> None:
        size = int(self._number("mb", 500) * MiB)
        chunked = self.query.get("chunked") == "1"
        self.send_response(int(self._number("status", 200)))
        self.send_header("Content-Type", "application/json")  # tempts a client to parse it
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        block, sent = memoryview(ZEROS), 0
        while sent < size:
            if self.server.stopping.is_set():
                self._abandon()
                return
            piece = block[: min(len(block), size - sent)]
            self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def behave_drip_body(self) -> None:
        interval = self._number("interval", 2)
        length = int(self._number("length", 1_000_000))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self._abandon()
        for _ in range(length):
            if not self._pause(interval):
                return
            self.wfile.write(b" ")  # JSON whitespace: never invalid, never done

    def behave_drip_headers(self) -> None:
        interval = self._number("interval", 1)
        self._abandon()
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        count = 0
        while self._pause(interval):
            count += 1
            self.wfile.write(b"X-Drip-%d: %d\r\n" % (count, count))

    def behave_slow(self) -> None:
        if self._pause(self._number("delay", 0)):
            self._json(200, {"ok": True})
        else:
            self._abandon()

    def behave_deep_json(self) -> None:
        depth = int(self._number("depth", 5000))
        self._send(200, b"[" * depth + b"]" * depth)

    def behave_invalid_utf8(self) -> None:
        # A Latin-1 byte, bytes UTF-8 never uses, a truncated sequence, an encoded surrogate.
        body = (
            b'{"ok": true, "name": "caf\xe9", "bytes": "\xff\xfe", "cut": "\xe2\x82",'
            b' "surrogate": "\xed\xa0\x80"}'
        )
        self._send(200, body, content_type="application/json; charset=utf-8")

    def behave_nul(self) -> None:
        if self.query.get("raw") == "1":
            self._send(200, b"before\x00after\x00", content_type="text/plain; charset=utf-8")
        else:
            self._json(200, {"ok": True, "text": "before\x00after", "key\x00": "value"})

    def behave_long_header(self) -> None:
        self._json(200, {"ok": True}, [("X-Long", "x" * int(self._number("length", 100_000)))])

    def behave_many_headers(self) -> None:
        count = int(self._number("count", 200))
        self._json(200, {"ok": True}, [(f"X-Many-{i}", str(i)) for i in range(count)])

    def behave_echo_secrets(self) -> None:
        status = int(self._number("status", 200))
        authorization = self.headers.get("Authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else authorization
        headers = [
            ("X-Echo-Authorization", authorization),
            ("WWW-Authenticate", f'Bearer realm="x", error_description="{token}"'),
            ("Set-Cookie", f"t={token}"),
            ("Location", f"/x?access_token={token}"),
        ]
        forms = {
            "authorization": authorization,
            "token": token,
            "message": f"the access token {token} has expired",
            "quoted": f'"{token}"/',  # JSON-escaped in the body: \"token\"/
            "repr": f"Token(access_token='{token}')",
            "repr_dict": repr({"Authorization": authorization}),
            "url_encoded": quote(token, safe=""),
            "query": f"https://api.example/cb?access_token={quote(token, safe='')}",
            "base64": base64.b64encode(token.encode("latin-1")).decode(),
            "nested": {"request": {"headers": {"Authorization": authorization}}},
            "list": [token],
        }
        # Spellings json.dumps never writes but other servers do: an escaped slash after the
        # token, and the token written entirely in \u escapes (absent from the raw bytes).
        escaped = json.dumps(token)[1:-1]
        spelt = "".join(f"\\u{ord(char):04x}" for char in token)
        extra = f', "slashed": "{escaped}\\/next", "unicode_escaped": "{spelt}"}}'
        self._send(status, (json.dumps(forms)[:-1] + extra).encode(), headers)

    def behave_status(self) -> None:
        code = int(self._number("code", 503))
        headers = (
            [("Retry-After", self.query["retry_after"])] if "retry_after" in self.query else []
        )
        self._json(code, {"error": "unavailable", "code": code}, headers)

    def behave_rate_spent(self) -> None:
        reset = self.query.get("reset", "60")
        headers = [
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", reset),
            ("RateLimit", f"limit=10, remaining=0, reset={reset}"),
            ("RateLimit-Policy", "10;w=60"),
            ("X-Knewton-Rate-Delay", reset),
        ]
        self._json(200, {"ok": True}, headers)

    def behave_too_many(self) -> None:
        headers = [("Retry-After", self.query.get("seconds", "3600"))]
        self._json(429, {"error": "rate_limited"}, headers)

    def behave_always_401(self) -> None:
        headers = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
        self._json(401, {"error": "invalid_token"}, headers)

    def behave_reset(self) -> None:
        # SO_LINGER with a zero timeout: close() sends RST (shutdown_request skips the FIN).
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.reset_on_close(self.connection)
        self._abandon()

    # -- the token endpoint and the control endpoints

    def _token(self, body: bytes) -> None:
        server = self.server
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        authorization = self.headers.get("Authorization", "")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except ValueError:  # binascii.Error and UnicodeDecodeError both are
                decoded = ""
            user, _, password = decoded.partition(":")
            # RFC 6749 2.3.1: the id and secret are form-encoded before the base64.
            client_id, client_secret = unquote_plus(user), unquote_plus(password)
        grant_type, mode = form.get("grant_type"), server.token_mode
        with server.lock:
            server.grant_types.append(grant_type)
            server.scopes.append(form.get("scope"))

        if mode == "hang":
            self._abandon()
            server.stopping.wait()
            return
        if mode == "status":
            self._send(server.token_status, server.token_body.encode())
            return
        if mode == "echo_error":
            description = (
                f"client secret {client_secret!r} is wrong (Authorization: {authorization};"
                f" credentials {client_id}:{client_secret})"
            )
            self._json(400, {"error": "invalid_client", "error_description": description})
            return
        if (client_id, client_secret) != (server.client_id, server.client_secret):
            self._json(401, {"error": "invalid_client"}, [("WWW-Authenticate", "Basic")])
            return
        if grant_type == "refresh_token":
            with server.lock:
                known = form.get("refresh_token") in server.refresh_tokens
            if not known:
                self._json(400, {"error": "invalid_grant"})
                return
        elif grant_type != "client_credentials":
            self._json(400, {"error": "unsupported_grant_type"})
            return

        token = (
            BAD_TOKENS[server.bad_token]
            if mode == "bad_token"
            else "hostile-" + secrets.token_urlsafe(24)
        )
        token_type = "x" * server.token_type_length if mode == "huge_token_type" else "Bearer"
        answer = {"access_token": token, "token_type": token_type}
        if server.issue_refresh:
            answer["refresh_token"] = "refresh-" + secrets.token_urlsafe(24)
        if "scope" in form:
            answer["scope"] = form["scope"]
        expires_in = _json_text(server.expires_in) if mode == "expires_in" else "3600"
        text = json.dumps(answer)
        if expires_in is not None:  # spliced in as text: 1e400 or NaN are no Python values
            text = f'{text[:-1]}, "expires_in": {expires_in}}}'
        with server.lock:
            server.grants += 1
            server.issued.append(token)
            if "refresh_token" in answer:
                server.refresh_tokens.add(answer["refresh_token"])
        self._send(200, text.encode(), [("Cache-Control", "no-store")])

    def _control(self, path: str, body: bytes) -> None:
        server = self.server
        if path == "/_received" and self.command == "GET":
            with server.lock:
                records = [record.as_json() for record in server.received]
            self._json(200, records)
        elif path == "/_control" and self.command == "POST":
            try:
                server.configure(**json.loads(body or b"{}"))
            except (ValueError, TypeError) as error:
                self._json(400, {"error": "bad_configuration", "error_description": str(error)})
                return
            self._json(200, server.state())
        else:
            self._json(405, {"error": "method_not_allowed"})


BEHAVIOURS = frozenset(
    name.removeprefix("behave_").replace("_", "-")
    for name in dir(Handler)
    if name.startswith("behave_")
)


def _json_text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int = 0, log_path: Path | str | None = None, **config: object) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.received: list[Received] = []  # appended under self.lock; read a list() copy
        self.grants = 0  # successful grants
        self.issued: list[str] = []  # access tokens granted, in order
        self.refresh_tokens: set[str] = set()
        self.scopes: list[str | None] = []  # of every token request, whatever the mode
        self.grant_types: list[str | None] = []
        self.storm_began: float | None = None  # time.monotonic() of its first refusal
        # (arrived, answered): time.monotonic() as each refused request arrived, and just
        # before its answer was written (no later than its client could have read it)
        self.refusals: list[tuple[float, float]] = []
        self._storm_seen = 0  # API requests counted towards storm_after
        self._open: set[socket.socket] = set()
        self._reset: set[socket.socket] = set()
        self._log: IO[str] | None = None
        if log_path:  # closed by stop(); a killed process loses nothing: each line is fsynced
            self._log = Path(log_path).open("a", encoding="utf-8")  # noqa: SIM115
        for key, value in CONFIG.items():
            setattr(self, key, value)
        self.configure(**config)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def configure(self, **changes: object) -> None:
        """Change configuration keys (see CONFIG); unknown keys and values raise ValueError."""
        if unknown := sorted(set(changes) - set(CONFIG)):
            raise ValueError(f"unknown configuration keys: {unknown}")
        if changes.get("token_mode", self.token_mode) not in TOKEN_MODES:
            raise ValueError(f"token_mode must be one of {TOKEN_MODES}")
        if changes.get("bad_token", self.bad_token) not in BAD_TOKENS:
            raise ValueError(f"bad_token must be one of {sorted(BAD_TOKENS)}")
        for key, value in changes.items():
            setattr(self, key, value)
        if "storm_after" in changes:  # a storm configured anew begins anew
            with self.lock:
                self.storm_began, self._storm_seen = None, 0

    def state(self) -> dict[str, object]:
        with self.lock:
            counts = {
                "grants": self.grants,
                "scopes": list(self.scopes),
                "grant_types": list(self.grant_types),
            }
            return {
                **{key: getattr(self, key) for key in CONFIG},
                **counts,
                "received": len(self.received),
            }

    def record(self, request: Received) -> None:
        with self.lock:  # one line at a time, in arrival order
            self.received.append(request)
            if self._log:
                self._log.write(json.dumps(request.as_json()) + "\n")
                self._log.flush()
                os.fsync(self._log.fileno())

    def storming(self, arrived: float) -> bool:
        """Whether the request that arrived at ``arrived`` is refused by the storm."""
        if self.storm_after is None:
            return False
        with self.lock:
            self._storm_seen += 1
            if self.storm_began is None and self._storm_seen > self.storm_after:
                self.storm_began = arrived
            return self.storm_began is not None and arrived < self.storm_began + float(
                self.storm_seconds
            )

    def refused(self, arrived: float) -> None:
        with self.lock:
            self.refusals.append((arrived, time.monotonic()))

    def reset_on_close(self, sock: socket.socket) -> None:
        with self.lock:
            self._reset.add(sock)

    def process_request(self, request: socket.socket, client_address: object) -> None:
        with self.lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self.lock:
            self._open.discard(request)
            reset = request in self._reset
            self._reset.discard(request)
        if reset:
            request.close()
        else:
            super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exception(), OSError):
            return  # the client went away, or stop() cut the connection: expected here
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop serving, end drips, delays and hangs, and cut every open connection."""
        self.stopping.set()
        self.shutdown()
        with self.lock:
            connections = list(self._open)
            log, self._log = self._log, None
        for sock in connections:  # unblocks handlers reading from or writing to them
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if log:
            log.close()


@contextmanager
def serve_hostile(log_path: Path | str | None = None, **config: object) -> Iterator[HostileServer]:
    """The hostile API on a free loopback port, served by a thread until the block ends;
    ``config`` as for ``configure``, ``log_path`` as in process mode."""
    server = HostileServer(0, log_path, **config)
    # A short poll interval: stop() waits up to one for serve_forever to notice.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="hostile-api", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=5)


@contextmanager
def hostile_process(log_path: Path | str, **config: object) -> Iterator[str]:
    """The hostile API in its own process, logging every request to ``log_path``; yields its
    URL once it listens, and kills it (SIGKILL) when the block ends."""
    command = [sys.executable, "-m", "tests.helpers.hostile", "0", "--log", str(log_path)]
    if config:
        command += ["--config", json.dumps(config)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        url = process.stdout.readline().strip() if ready else ""
        if not url.startswith("http://"):
            raise RuntimeError(f"the hostile API did not start (it wrote {url!r})")
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An API that misbehaves on request.")
    parser.add_argument("port", type=int, help="0 for a free port")
    parser.add_argument(
        "--log", type=Path, help="append every request here, fsynced, as JSON lines"
    )
    parser.add_argument("--config", type=json.loads, default={}, help="a JSON object (see CONFIG)")
    args = parser.parse_args(argv)
    server = HostileServer(args.port, args.log, **args.config)
    sys.stdout.write(server.url + "\n")  # listening already: the caller may connect at once
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()

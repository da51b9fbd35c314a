"""The hostile API does what it says, shown with plain requests, zlib and sockets.

Tests of the client against it trust these behaviours; here they are checked without the
client, so a failure there is the client's. Every read is bounded (sizes and timeouts), and no
test needs the database.
"""

import base64
import json
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests

from tests.helpers.hostile import BAD_TOKENS, HostileServer, MiB, hostile_process, serve_hostile

CLIENT = ("hostile-client", "hostile-secret-0123456789")
TIMEOUT = 5


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with serve_hostile() as server:
        yield server


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)


def raw_get(url: str, path: str, limit: int = 4 * MiB) -> tuple[bytes, bytes]:
    """Head and body of ``GET path``, as sent: read until the server closes, or ``limit``."""
    with connect(url) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while len(data) < limit and (piece := sock.recv(64 * 1024)):
            data += piece
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def header_lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")[1:]


def grant(server: HostileServer, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", **form}
    return requests.post(f"{server.url}/oauth/token", data=data, auth=CLIENT, timeout=TIMEOUT)


# -- bodies


def test_the_bomb_is_small_and_inflates_past_100_mb(server: HostileServer) -> None:
    head, body = raw_get(server.url, "/api/bomb")  # 200 MB, gzip in gzip
    assert b"Content-Encoding: gzip, gzip" in header_lines(head)
    assert len(body) < 2000
    inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, MiB)  # ~200 KB
    zeros, inflated = zlib.decompressobj(16 + zlib.MAX_WBITS), 0
    while inflated <= 100 * MiB:  # stop there: inflating all of it is what a client must not do
        piece = zeros.decompress(inner, MiB)
        inner = zeros.unconsumed_tail
        assert piece and not piece.strip(b"\0")
        inflated += len(piece)


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip", "deflate"])
def test_urllib3_decodes_every_bomb_encoding(server: HostileServer, encoding: str) -> None:
    url = f"{server.url}/api/bomb?mb=2&encoding={encoding}"
    with requests.get(url, stream=True, timeout=TIMEOUT) as response:
        assert response.headers["Content-Encoding"] == encoding
        assert response.headers["X-Inflated-Length"] == str(2 * MiB)
        assert response.raw.read(MiB, decode_content=True) == bytes(MiB)


@pytest.mark.parametrize(("query", "framing"), [("", "Content-Length"), ("&chunked=1", "chunked")])
def test_huge_bodies_stream(server: HostileServer, query: str, framing: str) -> None:
    with requests.get(f"{server.url}/api/huge?mb=500{query}", stream=True, timeout=TIMEOUT) as r:
        if framing == "chunked":
            assert r.headers["Transfer-Encoding"] == "chunked"
        else:
            assert r.headers["Content-Length"] == str(500 * MiB)
        assert r.raw.read(2 * MiB) == bytes(2 * MiB)  # then the client hangs up


def test_drips_are_slow(server: HostileServer) -> None:
    started = time.monotonic()
    url = f"{server.url}/api/drip-body?interval=0.2"
    with requests.get(url, stream=True, timeout=TIMEOUT) as response:
        assert time.monotonic() - started < 0.2  # headers at once
        assert response.raw.read(2) == b"  "
        assert time.monotonic() - started >= 0.4  # a byte per interval

    with connect(server.url) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/drip-headers?interval=0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = sock.recv(1024)
        assert received == b"HTTP/1.1 200 OK\r\n"
        while received.count(b"\r\n") < 3:
            received += sock.recv(1024)
        assert time.monotonic() - started >= 0.4
        assert received.endswith(b"X-Drip-1: 1\r\nX-Drip-2: 2\r\n")


def test_slow_answers_after_the_delay(server: HostileServer) -> None:
    started = time.monotonic()
    response = requests.get(f"{server.url}/api/slow?delay=0.3", timeout=TIMEOUT)
    assert response.json() == {"ok": True}
    assert time.monotonic() - started >= 0.3


def test_bodies_that_parsers_choke_on(server: HostileServer) -> None:
    _, body = raw_get(server.url, "/api/deep-json?depth=5000")
    assert body == b"[" * 5000 + b"]" * 5000

    response = requests.get(f"{server.url}/api/invalid-utf8", timeout=TIMEOUT)
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(UnicodeDecodeError):
        response.content.decode()

    response = requests.get(f"{server.url}/api/nul", timeout=TIMEOUT)
    assert b"\\u0000" in response.content and b"\0" not in response.content
    assert response.json()["text"] == "before\0after"
    response = requests.get(f"{server.url}/api/nul?raw=1", timeout=TIMEOUT)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.content == b"before\0after\0"


def test_headers_that_parsers_choke_on(server: HostileServer) -> None:
    head, _ = raw_get(server.url, "/api/long-header?length=100000")
    assert b"X-Long: " + b"x" * 100_000 in header_lines(head)

    head, _ = raw_get(server.url, "/api/many-headers?count=200")
    assert sum(line.startswith(b"X-Many-") for line in header_lines(head)) == 200


# -- credentials, refusals and resets


def test_echo_secrets_reflects_the_token_in_every_spelling(server: HostileServer) -> None:
    token = 'tok/en+"quoted"=='
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.get(f"{server.url}/api/echo-secrets", headers=headers, timeout=TIMEOUT)
    assert response.headers["X-Echo-Authorization"] == f"Bearer {token}"
    assert response.headers["WWW-Authenticate"].endswith(f'error_description="{token}"')
    assert response.headers["Set-Cookie"] == f"t={token}"
    assert response.headers["Location"] == f"/x?access_token={token}"
    body = response.json()
    assert body["token"] == token and body["authorization"] == f"Bearer {token}"
    assert token in body["message"] and f"'{token}'" in body["repr"]
    assert unquote(body["url_encoded"]) == token
    assert base64.b64decode(body["base64"]).decode() == token
    assert body["slashed"] == f"{token}/next" and body["unicode_escaped"] == token
    assert json.dumps(token)[1:-1].encode() in response.content  # JSON-escaped, as sent
    assert b"\\u0074\\u006f\\u006b" in response.content  # "tok" spelt in \u escapes


def test_refusals(server: HostileServer) -> None:
    response = requests.get(f"{server.url}/api/status?code=503&retry_after=3600", timeout=TIMEOUT)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "3600")

    response = requests.get(f"{server.url}/api/rate-spent?reset=30", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit"] == "limit=10, remaining=0, reset=30"
    assert response.headers["X-Knewton-Rate-Delay"] == "30"

    response = requests.get(f"{server.url}/api/too-many?seconds=7", timeout=TIMEOUT)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")

    response = requests.get(f"{server.url}/api/always-401/items/1", timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_reset_reads_the_request_then_resets(server: HostileServer) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{server.url}/api/reset", json={"n": 1}, timeout=TIMEOUT)
    assert server.received[-1].body_length == len(b'{"n": 1}')


def test_other_api_paths_answer_and_are_recorded(server: HostileServer) -> None:
    body = b"a" * 10_000
    headers = {"Idempotency-Key": "key-1"}
    url = f"{server.url}/api/things?page=2"
    with requests.Session() as session:  # one keep-alive connection for both calls
        response = session.post(url, data=body, headers=headers, timeout=TIMEOUT)
        assert response.json() == {"ok": True, "method": "POST", "path": "/api/things?page=2"}
        chunks = iter([b"x" * 100, b"y" * 50])  # a chunked request body is read too
        assert session.put(url, data=chunks, timeout=TIMEOUT).json()["method"] == "PUT"
    first, second = server.received
    assert (first.method, first.path, first.body_length) == ("POST", "/api/things?page=2", 10_000)
    assert first.body == body[:4096] and first.header("idempotency-key") == "key-1"
    assert (second.body_length, second.body) == (150, b"x" * 100 + b"y" * 50)
    assert first.time <= second.time
    assert requests.get(f"{server.url}/elsewhere", timeout=TIMEOUT).status_code == 404


def test_stopping_does_not_wait_for_drips_delays_or_hangs() -> None:
    paths = ["/api/drip-body?interval=60", "/api/drip-headers?interval=60", "/api/slow?delay=60"]
    with serve_hostile(token_mode="hang") as server:
        sockets = [connect(server.url) for _ in range(4)]
        for sock, path in zip(sockets, paths, strict=False):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sockets[3].sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        deadline = time.monotonic() + TIMEOUT
        while len(server.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.received) == 4
        started = time.monotonic()
    assert time.monotonic() - started < 1
    for sock in sockets:
        sock.close()


# -- the token endpoint


def test_normal_grants(server: HostileServer) -> None:
    first = grant(server, scope="read write").json()
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3600
    assert first["scope"] == "read write" and "refresh_token" not in first
    form = {"grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    second = requests.post(f"{server.url}/token", data=form, timeout=TIMEOUT).json()
    assert first["access_token"] != second["access_token"]

    server.issue_refresh = True
    refresh_token = grant(server).json()["refresh_token"]
    assert grant(server, grant_type="refresh_token", refresh_token=refresh_token).ok
    refused = grant(server, grant_type="refresh_token", refresh_token="unknown")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    response = requests.post(f"{server.url}/token", data=form, auth=("x", "y"), timeout=TIMEOUT)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")

    assert server.grants == 4 and len(server.issued) == 4
    assert server.scopes == ["read write", None, None, None, None, None]
    assert server.grant_types[-3:] == ["refresh_token", "refresh_token", "client_credentials"]


EXPIRES_IN = [
    (1e30, '"expires_in": 1e+30'),
    ("1e400", '"expires_in": 1e400'),  # JSON text, as-is: float("inf") once parsed
    (True, '"expires_in": true'),
    ('"abc"', '"expires_in": "abc"'),
    (-5, '"expires_in": -5'),
    ("null", '"expires_in": null'),
]


@pytest.mark.parametrize(("configured", "text"), EXPIRES_IN)
def test_expires_in_is_sent_as_configured(
    server: HostileServer, configured: object, text: str
) -> None:
    server.configure(token_mode="expires_in", expires_in=configured)
    assert text in grant(server).text


def test_expires_in_can_be_missing(server: HostileServer) -> None:
    server.configure(token_mode="expires_in", expires_in=None)
    answer = grant(server).json()
    assert "expires_in" not in answer and answer["access_token"]


def test_hostile_token_answers(server: HostileServer) -> None:
    server.token_mode = "huge_token_type"
    assert len(grant(server).json()["token_type"]) == 200_000

    server.token_mode = "echo_error"
    response = grant(server)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client")
    description = response.json()["error_description"]
    basic = "Basic " + base64.b64encode(":".join(CLIENT).encode()).decode()
    assert CLIENT[1] in description and basic in description and ":".join(CLIENT) in description

    server.configure(token_mode="status", token_status=503, token_body="<html>down</html>")
    response = grant(server)
    assert (response.status_code, response.text) == (503, "<html>down</html>")

    server.token_mode = "hang"
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{server.url}/token", data={}, auth=CLIENT, timeout=0.2)

    with pytest.raises(ValueError, match="token_mode"):
        server.configure(token_mode="nonsense")


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens(server: HostileServer, name: str) -> None:
    server.configure(token_mode="bad_token", bad_token=name)
    assert grant(server).json()["access_token"] == BAD_TOKENS[name]
    assert server.issued == [BAD_TOKENS[name]]


# -- its own process


def test_the_process_logs_a_request_before_answering_it(tmp_path: Path) -> None:
    log = tmp_path / "received.jsonl"
    with hostile_process(log) as url, connect(url) as sock:
        sock.sendall(
            b"POST /api/slow?delay=5 HTTP/1.1\r\nHost: x\r\nIdempotency-Key: key-7\r\n"
            b"X-Request-ID: req-7\r\nContent-Length: 2\r\n\r\n{}"
        )
        deadline = time.monotonic() + TIMEOUT
        while not log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.settimeout(0.1)
        with pytest.raises(TimeoutError):  # logged, and still unanswered
            sock.recv(1)
        line = json.loads(log.read_text())
        assert (line["method"], line["path"], line["body_length"]) == (
            "POST",
            "/api/slow?delay=5",
            2,
        )
        assert line["headers"]["Idempotency-Key"] == "key-7"
        assert line["headers"]["X-Request-ID"] == "req-7"

        control = requests.post(
            f"{url}/_control", json={"token_mode": "echo_error"}, timeout=TIMEOUT
        )
        assert control.json()["token_mode"] == "echo_error"
        assert requests.post(f"{url}/token", data={}, timeout=TIMEOUT).status_code == 400
        bad = requests.post(f"{url}/_control", json={"nonsense": 1}, timeout=TIMEOUT)
        assert bad.status_code == 400
        received = requests.get(f"{url}/_received", timeout=TIMEOUT).json()
        assert [record["path"] for record in received] == ["/api/slow?delay=5", "/token"]
    assert len(log.read_text().splitlines()) == 2

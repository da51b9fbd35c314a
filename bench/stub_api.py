"""A minimal JSON API for benchmarks and tests: as fast as a local endpoint can be, so that
what a benchmark measures is the client, not the server.

Run as ``python bench/stub_api.py PORT`` (its own process, as the benchmarks and the tests
that stop it mid-batch do), or in a thread with ``serve_in_thread()``. Every path answers
``{"ok": true}``; ``POST /token`` answers an OAuth2 token response. Query parameters:

- ``delay=SECONDS``: answer after that long;
- ``status=CODE``: answer with that status;
- ``reset=1``: read the request, then reset the connection (TCP RST) without answering.

HTTP/1.1 keep-alive, one thread per connection, loopback only. ``Server.targets`` keeps the
request target of every request (as sent on the request line) for tests to inspect.
"""

import json
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

OK = json.dumps({"ok": True}).encode()
TOKEN = json.dumps(
    {"access_token": "bench-token-0123456789", "token_type": "Bearer", "expires_in": 3600}
).encode()
MAX_DELAY = 60.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every keep-alive call
    server: "Server"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.targets.append(self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if "delay" in query:
            time.sleep(min(float(query["delay"][0]), MAX_DELAY))
        if "reset" in query:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        status = int(query["status"][0]) if "status" in query else 200
        body = TOKEN if parts.path.endswith("/token") and status == 200 else OK
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, Handler)
        self.targets: deque[str] = deque(maxlen=100_000)


@contextmanager
def serve_in_thread() -> Iterator[Server]:
    """A stub on a free loopback port, served by a thread of this process until the block ends."""
    server = Server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, name="stub-api", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url_of(server: Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1]))).serve_forever()

"""A minimal JSON API for benchmarks: as fast as a local endpoint can be, so that what a
benchmark measures is the client, not the server.

Run as ``python bench/stub_api.py PORT``. Every path answers ``{"ok": true}`` (after
``?delay=SECONDS`` when given); ``POST /token`` answers an OAuth2 token response. HTTP/1.1
keep-alive, one thread per connection, loopback only.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

OK = json.dumps({"ok": True}).encode()
TOKEN = json.dumps(
    {"access_token": "bench-token-0123456789", "token_type": "Bearer", "expires_in": 3600}
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every keep-alive call

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        delay = parse_qs(parts.query).get("delay")
        if delay:
            time.sleep(min(float(delay[0]), 5.0))
        body = TOKEN if parts.path.endswith("/token") else OK
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

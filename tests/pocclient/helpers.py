"""Test clients and readers for the console's JSON API."""

import json

from django.test import Client


class ConsoleClient(Client):
    """A test client with CSRF checks on, and helpers for JSON in and out.

    It reads the csrftoken cookie a page sets and sends it back as ``X-CSRFToken``, as the
    console's JavaScript does, so every POST goes through Django's real CSRF check.
    """

    def __init__(self) -> None:
        super().__init__(enforce_csrf_checks=True)

    def csrf_token(self) -> str:
        if "csrftoken" not in self.cookies:
            self.get("/", follow=True)  # the console, or the login page: both set it
        return self.cookies["csrftoken"].value

    def post_json(
        self,
        path: str,
        data: object = None,
        *,
        raw: bytes | None = None,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ):
        body = raw if raw is not None else json.dumps({} if data is None else data)
        headers = {**(headers or {}), **({"X-CSRFToken": self.csrf_token()} if csrf else {})}
        return self.post(path, body, content_type="application/json", headers=headers)


def ndjson(response) -> list[dict]:
    """The lines of a streamed NDJSON response, decoded."""
    body = b"".join(response.streaming_content)
    return [json.loads(line) for line in body.splitlines() if line.strip()]

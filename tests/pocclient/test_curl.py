"""The console's "copy as cURL", read from the page and run with the real curl against the sandbox.

curl picks its method from its options (GET; POST once --data is given), so the command says
`-X METHOD` only when that differs, and never carries a body the console would not send.
"""

import json
import shutil
import subprocess

import pytest
import requests

from .conftest import browser_unavailable

try:
    import playwright.sync_api  # noqa: F401
except ImportError:
    browser_unavailable("playwright is not installed (pip install -r requirements-dev.txt)")

pytestmark = pytest.mark.browser


def curl_of(page, method: str, body: str = "") -> str:
    """The cURL tab's text for ``method`` on ``echo/curl`` with ``body`` typed in."""
    page.select_option("#method", method)
    page.fill("#path", "echo/curl")
    page.click("[data-tab=body]")
    page.fill("#body", body)
    page.click("[data-tab=curl]")
    return page.inner_text("#curl")


def run_curl(command: str, sandbox_root: str) -> dict:
    """Run the copied command in a shell, as a user would, with a real token as $API_TOKEN
    (the sandbox's echo answers 401 without it: --fail makes that a failure)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    grant = requests.post(
        f"{sandbox_root}oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=10,
    )
    token = grant.json()["access_token"]
    result = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --fail"],
        env={"API_TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_get_with_a_body_typed_in_copies_without_the_body(console_page, sandbox_root):
    curl = curl_of(console_page, "GET", '{"name": "widget"}')

    assert curl.startswith("curl 'http")
    assert "-X" not in curl
    assert "--data" not in curl
    assert "Content-Type" not in curl
    echoed = run_curl(curl, sandbox_root)
    assert echoed["method"] == "GET"
    assert echoed["json"] is None


def test_options_with_a_body_copies_without_the_body(console_page):
    curl = curl_of(console_page, "OPTIONS", '{"name": "widget"}')

    assert curl.startswith("curl -X OPTIONS 'http")
    assert "--data" not in curl


def test_head_copies_as_curl_head_not_x_head(console_page):
    curl = curl_of(console_page, "HEAD", '{"name": "widget"}')

    assert curl.startswith("curl --head 'http")
    assert "-X" not in curl
    assert "--data" not in curl


def test_a_put_with_a_body_says_x_put_and_sends_the_body(console_page, sandbox_root):
    curl = curl_of(console_page, "PUT", '{"name": "widget", "size": 3}')

    assert curl.startswith("curl -X PUT 'http")
    assert "-H 'Content-Type: application/json'" in curl
    assert """--data-raw '{"name":"widget","size":3}'""" in curl
    echoed = run_curl(curl, sandbox_root)
    assert echoed["method"] == "PUT"
    assert echoed["json"] == {"name": "widget", "size": 3}


def test_a_post_with_a_body_leaves_the_method_to_curl(console_page, sandbox_root):
    curl = curl_of(console_page, "POST", '{"name": "widget"}')

    assert curl.startswith("curl 'http")  # --data-raw makes it a POST
    echoed = run_curl(curl, sandbox_root)
    assert echoed["method"] == "POST"
    assert echoed["json"] == {"name": "widget"}


def test_a_post_or_delete_without_a_body_says_its_method(console_page, sandbox_root):
    post = curl_of(console_page, "POST")
    delete = curl_of(console_page, "DELETE")

    assert post.startswith("curl -X POST 'http")
    assert delete.startswith("curl -X DELETE 'http")
    assert "--data" not in post + delete
    assert run_curl(post, sandbox_root)["method"] == "POST"
    assert run_curl(delete, sandbox_root)["method"] == "DELETE"

"""Take the README's screenshot of the console: docs/console.png.

Starts the project on a free port with a throwaway SQLite database and the built-in sandbox,
logs in, runs a batch and a request through the page, and saves a picture of the page.
Needs Debian's chromium (apt-get install chromium) and the dev requirements.

    python scripts/screenshot.py [--out docs/console.png]
"""

import argparse
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def batch_lines(count: int) -> str:
    """A mixed batch: latencies spread like a real API's, a few errors."""
    rng = random.Random(7)  # noqa: S311 (a picture, not security)
    lines = []
    for n in range(count):
        query = {"delay": f"{min(0.4, rng.lognormvariate(-3.6, 0.5)):.3f}"}
        if n % 37 == 5:
            query["status"] = "404"
        elif n % 53 == 9:
            query["status"] = "500"
        lines.append(json.dumps({"method": "GET", "path": "items", "query": query}))
    return "\n".join(lines)


def wait_for(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("The server stopped before it answered; see the output above.")
        try:
            urlopen(url, timeout=1)  # noqa: S310 (our own local server)
            return
        except URLError:
            time.sleep(0.2)
    sys.exit(f"No answer from {url} within 30 s.")


def shoot(url: str, password: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=url)
        page.goto("/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#token-state[data-state=valid]")

        page.check("input[name=batch-source][value=jsonl]")
        page.fill("#batch-jsonl", batch_lines(150))
        page.fill("#batch-concurrency", "8")
        page.click("#batch-run")
        page.wait_for_selector("#batch-summary:not([hidden])", timeout=60_000)
        page.fill("#batch-jsonl", "")
        page.check("input[name=batch-source][value=repeat]")

        page.select_option("#method", "POST")
        page.fill("#path", "items")
        page.click("[data-tab=body]")
        page.fill("#body", json.dumps({"name": "widget", "data": {"colour": "teal", "size": 3}}))
        page.click("[data-tab=headers]")
        page.click("[data-add=header-rows]")
        page.fill("#header-rows .kv-name", "X-Trace")
        page.fill("#header-rows .kv-value", "readme-demo")
        page.click("#send")
        page.wait_for_selector("#response-line:not([hidden])")
        page.click("[data-tab=body]")
        page.click("#history [data-status='4xx']")
        page.wait_for_timeout(500)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console.png")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"chromium is not installed at {CHROMIUM}: apt-get install chromium")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{tmp}/screenshot.sqlite3",
            "POC_API_BASE_URL": f"{url}/sandbox/api/",
            "POC_API_TOKEN_URL": f"{url}/sandbox/oauth/token",
            "DJANGO_SUPERUSER_PASSWORD": password,
            "DJANGO_LOG_LEVEL": "WARNING",
        }
        manage = [sys.executable, "manage.py"]
        for command in (
            ["migrate", "--no-input", "-v0"],
            ["createsuperuser", "--no-input", "--username", "admin", "--email", "a@example.com"],
        ):
            subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True)  # noqa: S603
        server = subprocess.Popen(  # noqa: S603
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_for(f"{url}/accounts/login/", server)
            shoot(url, password, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"Saved {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")  # noqa: T201


if __name__ == "__main__":
    main()

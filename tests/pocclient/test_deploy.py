"""Production settings: `check --deploy` is clean, and gunicorn serves the console end to end.

These run `manage.py` and gunicorn as the README tells an operator to, in subprocesses with
production environment variables (DEBUG off), against a throwaway SQLite file and static root.
"""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
GUNICORN = Path(sys.executable).with_name("gunicorn")


def production_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "POC_", "DATABASE_URL"))
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        POC_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="console.example.com,127.0.0.1",
        **extra,
    )
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    # PostgreSQL, as the README recommends for production: the check needs no connection.
    env = production_env(DATABASE_URL="postgres://pocclient@db.example/pocclient")

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory) -> Iterator[str]:
    """gunicorn with gunicorn.conf.py and production settings; the sandbox mounted as the API."""
    if not GUNICORN.exists():
        pytest.skip(f"gunicorn is not installed next to {sys.executable}")
    tmp = tmp_path_factory.mktemp("production")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        DJANGO_STATIC_ROOT=str(tmp / "static"),
        POC_SANDBOX="1",
        # The sandbox is called over plain HTTP on loopback; a TLS proxy would sit in front.
        DJANGO_SECURE_SSL_REDIRECT="0",
        POC_API_BASE_URL=f"{url}/sandbox/api/",
        POC_API_TOKEN_URL=f"{url}/sandbox/oauth/token",
        DJANGO_SUPERUSER_PASSWORD="production-test-password-1",
        # A batch is a job: production runs `manage.py db_worker`; here the web process does.
        POC_EMBEDDED_WORKER="1",
    )
    for args in (
        ("migrate", "--no-input"),
        ("collectstatic", "--no-input"),
        ("createsuperuser", "--no-input", "--username", "ops", "--email", "ops@example.com"),
    ):
        result = manage(*args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    server = subprocess.Popen(
        [
            str(GUNICORN),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--graceful-timeout",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/accounts/login/", timeout=1, allow_redirects=False)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start: {server.stderr.read()}")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


class Browser:
    """Just enough of a browser behind a TLS proxy: Secure cookies, Origin, X-Forwarded-Proto."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies: dict[str, str] = {}

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {
            "X-Forwarded-Proto": "https",
            "Origin": self.url.replace("http:", "https:"),
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            **kwargs.pop("headers", {}),
        }
        response = requests.request(
            method, self.url + path, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )
        self.cookies.update(response.cookies.get_dict())
        return response


def test_gunicorn_serves_the_console_static_files_and_a_streamed_batch(gunicorn):
    browser = Browser(gunicorn)

    login = browser.call("GET", "/accounts/login/")
    assert login.status_code == 200
    assert "script-src 'self'" in login.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" in login.headers
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    logged_in = browser.call(
        "POST",
        "/accounts/login/",
        data={"username": "ops", "password": "production-test-password-1", "next": "/"},
        headers={"X-CSRFToken": form_token},
    )
    assert logged_in.status_code == 302, logged_in.text[:500]

    page = browser.call("GET", "/")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert any(re.search(r"console\.[0-9a-f]{12}\.js$", a) for a in assets), assets
    for asset in assets:
        served = browser.call("GET", asset)
        assert served.status_code == 200, asset
        assert "immutable" in served.headers["Cache-Control"]

    batch = browser.call(
        "POST",
        "/api/batch",
        json={"requests": [{"method": "GET", "path": "echo"}] * 3, "concurrency": 2},
        headers={"X-CSRFToken": browser.cookies["csrftoken"]},
        stream=True,
    )
    assert batch.status_code == 200
    assert batch.headers["Content-Type"] == "application/x-ndjson"
    *items, last = [json.loads(line) for line in batch.iter_lines() if line]
    assert [item["status"] for item in items] == [200, 200, 200], items
    assert last["summary"]["by_status"] == {"200": 3}


def run_gunicorn(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    if not GUNICORN.exists():
        pytest.skip(f"gunicorn is not installed next to {sys.executable}")
    return subprocess.run(
        [str(GUNICORN), "--bind", f"127.0.0.1:{free_port()}", "--workers", "1", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


BAD_WORKERS = "ImproperlyConfigured: POC_API_MAX_WORKERS must be an integer; got 'lots'.\n"


def test_gunicorn_refuses_a_bad_environment_value_in_one_line_before_it_binds():
    result = run_gunicorn(env=production_env(POC_API_MAX_WORKERS="lots"))

    assert result.returncode == 2
    assert BAD_WORKERS in result.stderr
    assert "Traceback" not in result.stderr
    assert "Listening at" not in result.stderr
    assert "Booting worker" not in result.stderr


def test_a_gunicorn_worker_that_cannot_load_the_settings_stops_the_server(tmp_path):
    # Without gunicorn.conf.py's check (another config file), the worker says why in one line
    # and exits with gunicorn's "App failed to load": the master stops instead of respawning.
    config = tmp_path / "gunicorn.conf.py"
    config.write_text('wsgi_app = "pocclient.wsgi:application"\n')

    result = run_gunicorn("--config", str(config), env=production_env(POC_API_MAX_WORKERS="lots"))

    assert result.returncode == 4
    assert "Booting worker" in result.stderr
    assert BAD_WORKERS in result.stderr
    assert "Traceback" not in result.stderr
    assert "Reason: App failed to load." in result.stderr
    assert result.stderr.count("Booting worker") == 1


def test_a_gunicorn_worker_refuses_to_serve_without_an_encryption_key():
    env = production_env()
    del env["POC_ENCRYPTION_KEY"]

    result = run_gunicorn(env=env)

    assert result.returncode == 4  # the worker's "App failed to load": the master stops
    assert "api_client.E003" in result.stderr
    assert "POC_ENCRYPTION_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("Booting worker") == 1

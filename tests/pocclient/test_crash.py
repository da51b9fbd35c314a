"""kill -9 in the middle of calls: every call that reached the API is on record.

A hostile API in its own process logs each request it receives (fsynced before it answers);
pocclient runs under gunicorn, or as ``manage.py send_batch``, on this test's database, and is
killed with SIGKILL while calls are in flight. Every call the API's log shows must then have
its exchange: answered, or pending (to be shown as unknown once it should have settled).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from api_client.models import Exchange
from api_client.permissions import CONSOLE_USERS
from bench.common import project_server
from tests.helpers.hostile import CONFIG, hostile_process
from tests.helpers.processes import ROOT, database_url_for_subprocess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.heavy]

CSRF = "crashtestcrashtestcrashtestcrash"  # a well-formed token, sent as cookie and header


def api_environ(url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url_for_subprocess(),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # sessions made here are valid there
        "POC_API_BASE_URL": f"{url}/api/",
        "POC_API_TOKEN_URL": f"{url}/oauth/token",
        "POC_API_CLIENT_ID": CONFIG["client_id"],
        "POC_API_CLIENT_SECRET": CONFIG["client_secret"],
        "POC_API_RETRIES": "0",
        "POC_EMBEDDED_WORKER": "1",  # the batch is a job; the web process runs it
        "DJANGO_LOG_LEVEL": "WARNING",
    }


def received_markers(log: Path) -> set[str]:
    """The ``n`` of every API call the hostile API received."""
    found = set()
    for line in log.read_text().splitlines():
        path = json.loads(line)["path"]
        if "n=" in path:
            found.add(path.rsplit("n=", 1)[1].split("&")[0])
    return found


def recorded_markers() -> dict[str, str]:
    rows = Exchange.objects.filter(kind="api").values_list("path", "state")
    return {path.rsplit("n=", 1)[1].split("&")[0]: state for path, state in rows if "n=" in path}


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def assert_every_received_call_is_on_record(log: Path) -> None:
    received, recorded = received_markers(log), recorded_markers()
    assert received, "the API received nothing: the test killed too early"
    assert received <= set(recorded), sorted(received - set(recorded))
    assert set(recorded.values()) <= {"answered", "pending", "unknown"}
    assert "pending" in recorded.values()  # it did die with calls in flight


@pytest.fixture
def session_headers(db) -> dict[str, str]:
    user = get_user_model().objects.create_user("crash-test")
    user.groups.add(Group.objects.get(name=CONSOLE_USERS))
    client = Client()
    client.force_login(user)
    return {
        "Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF}",
        "X-CSRFToken": CSRF,
    }


def test_killing_the_server_during_sends_and_a_batch_leaves_every_call_on_record(
    tmp_path, session_headers
):
    log = tmp_path / "received.jsonl"
    with hostile_process(log) as url, project_server(threads=24, **api_environ(url)) as app:

        def send(n: int) -> None:
            call = {"method": "POST", "path": "slow", "query": {"delay": 5, "n": f"s{n}"}}
            with suppress(requests.RequestException):  # the server dies under it: the point
                requests.post(f"{app.url}/api/send", json=call, headers=session_headers, timeout=30)

        def batch() -> None:
            calls = [
                {"method": "POST", "path": "slow", "query": {"delay": 0.2, "n": f"b{n}"}}
                for n in range(200)
            ]
            with suppress(requests.RequestException):
                answer = requests.post(
                    f"{app.url}/api/batch",
                    json={"requests": calls, "concurrency": 8},
                    headers=session_headers,
                    timeout=60,
                    stream=True,
                )
                for _ in answer.iter_lines():
                    pass

        senders = [threading.Thread(target=send, args=(n,)) for n in range(12)]
        senders.append(threading.Thread(target=batch))
        for thread in senders:
            thread.start()
        wait_until(lambda: len(received_markers(log)) >= 40 if log.exists() else False)
        app.kill()
        for thread in senders:
            thread.join(timeout=60)

    assert_every_received_call_is_on_record(log)


def test_killing_send_batch_leaves_every_call_on_record(tmp_path):
    log = tmp_path / "received.jsonl"
    source = tmp_path / "calls.jsonl"
    source.write_text(
        "".join(
            json.dumps({"method": "POST", "path": "slow", "query": {"delay": 0.2, "n": f"c{n}"}})
            + "\n"
            for n in range(300)
        )
    )
    with hostile_process(log) as url:
        command = subprocess.Popen(
            [sys.executable, "manage.py", "send_batch", str(source), "--concurrency", "8"],
            cwd=ROOT,
            env={**os.environ, **api_environ(url)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: len(received_markers(log)) >= 40 if log.exists() else False)
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)

    assert_every_received_call_is_on_record(log)

"""manage.py api_request against the live sandbox."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api_client.models import Exchange
from tests.helpers.exchanges import fake_stdin, run_command
from tests.helpers.processes import ROOT, database_url_for_subprocess


def api_request(*argv: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("api_request", *argv, stdout=out, stderr=err, skip_checks=True)
    return out.getvalue(), err.getvalue()


def body_of(out: str) -> object:
    return json.loads(out.split("\n", 1)[1])


def test_get_prints_the_status_line_and_pretty_json(api_config):
    out, _ = api_request("GET", "whoami")

    status_line, rest = out.split("\n", 1)
    exchange = Exchange.objects.get(kind=Exchange.Kind.API)
    assert status_line.startswith("HTTP 200 OK  (GET /whoami, ")
    assert f"exchange {exchange.pk}, request id {exchange.request_id})" in status_line
    assert rest.startswith('{\n  "client_id": "sandbox-client",')


def test_post_sends_inline_data_query_and_headers(api_config):
    out, _ = api_request(
        "post",
        "echo",
        "--data",
        '{"name": "widget", "n": 1}',
        "--query",
        "a=1",
        "--query",
        "a=2",
        "--query",
        "eq=x=y",
        "--header",
        "X-Trace: t-1",
    )

    echoed = body_of(out)
    assert out.startswith("HTTP 200 OK  (POST /echo?a=1&a=2&eq=x%3Dy, ")
    assert echoed["json"] == {"name": "widget", "n": 1}
    assert echoed["query"] == {"a": ["1", "2"], "eq": ["x=y"]}
    assert echoed["headers"]["X-Trace"] == "t-1"


def test_data_is_read_from_a_file(api_config, tmp_path):
    body = tmp_path / "item.json"
    body.write_text('{"name": "from a file"}', encoding="utf-8")

    out, _ = api_request("POST", "items", "--data", f"@{body}")

    assert out.startswith("HTTP 201 Created")
    assert body_of(out)["name"] == "from a file"


def test_data_is_read_from_standard_input(api_config, monkeypatch):
    fake_stdin(monkeypatch, b'{"name": "from stdin"}')

    out, _ = api_request("POST", "items", "--data", "@-")

    assert body_of(out)["name"] == "from stdin"


def test_an_error_status_is_printed_and_exits_0_without_fail(api_config):
    out, _ = api_request("GET", "items/999999")

    assert out.startswith("HTTP 404 Not Found")
    assert body_of(out)["error"] == "not_found"


def test_fail_exits_1_on_an_error_status_after_printing_it(api_config, capsys, monkeypatch):
    result = run_command(
        "api_request", "GET", "items/999999", "--fail", capsys=capsys, monkeypatch=monkeypatch
    )

    assert result.status == 1
    assert result.out.startswith("HTTP 404 Not Found")
    assert "CommandError: The API answered 404 (--fail)." in result.err


def test_fail_exits_0_on_success(api_config, capsys, monkeypatch):
    result = run_command(
        "api_request", "GET", "whoami", "--fail", capsys=capsys, monkeypatch=monkeypatch
    )

    assert result.status == 0


def test_verbosity_0_prints_only_the_body(api_config):
    out, _ = api_request("GET", "whoami", "-v", "0")

    assert json.loads(out)["client_id"] == "sandbox-client"


def test_verbosity_2_prints_the_response_headers(api_config):
    out, _ = api_request("GET", "whoami", "-v", "2")

    assert "\nContent-Type: application/json\n" in out


def test_an_empty_body_prints_the_status_line_alone(api_config):
    out, _ = api_request("HEAD", "whoami")

    assert out.startswith("HTTP 200 OK  (HEAD /whoami, ")
    assert out.count("\n") == 1


def test_the_request_id_option_is_sent_and_stored(api_config):
    out, _ = api_request("GET", "echo", "--request-id", "cron-2026-11-25")

    assert body_of(out)["headers"]["X-Request-Id"] == "cron-2026-11-25"
    assert set(Exchange.objects.values_list("request_id", flat=True)) == {"cron-2026-11-25"}


def test_each_run_gets_its_own_request_id(api_config):
    api_request("GET", "whoami")
    api_request("GET", "whoami")

    ids = Exchange.objects.filter(kind=Exchange.Kind.API).values_list("request_id", flat=True)
    assert len(set(ids)) == 2
    assert all(len(i) == 32 for i in ids)


def test_an_unreachable_api_exits_1_with_the_reason(
    configure_api, closed_port, capsys, monkeypatch
):
    configure_api(BASE_URL=f"http://127.0.0.1:{closed_port}/", RETRIES=0)

    result = run_command("api_request", "GET", "items", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert "Connection refused" in result.err
    assert "(exchange " in result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["BREW", "items"], "Unknown method 'BREW'"),
        (["GET", "../oauth/token"], "may not contain '.' or '..'"),
        (["GET", "http://evil.example/"], "absolute URLs are refused"),
        (["GET", "items", "--data", "{x"], "--data is not valid JSON"),
        (["GET", "items", "--data", "null"], "--data is null"),
        (["GET", "items", "--data", "@/no/such/file.json"], "Cannot read --data file"),
        (["GET", "items", "--data", '{"a": 1}'], "A GET request cannot have a body"),
        (["GET", "items", "--query", "novalue"], "--query 'novalue' is not NAME=VALUE"),
        (["GET", "items", "--header", "NoColon"], "--header 'NoColon' is not NAME:VALUE"),
        (["GET", "items", "--header", "Authorization: Bearer x"], "managed by pocclient"),
        (["GET", "items", "--header", "X-A: a\x01b"], "control character"),
        (["POST", "items", "--data", "[1e999]"], "--data: the number 1e999 is out of range; "),
        (["POST", "items", "--data", '{"a": NaN}'], "--data: NaN is not a JSON value"),
        (["POST", "items", "--data", "9" * 4301], "has 4301 digits; at most 4300 are allowed"),
        (["POST", "items", "--data", "[" * 50_000], "--data: it is nested too deeply"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(configure_api, closed_port, argv, message):
    nowhere = f"http://127.0.0.1:{closed_port}"
    configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token")

    with pytest.raises(CommandError) as caught:
        api_request(*argv)

    assert message in str(caught.value)
    assert caught.value.returncode == 2
    assert Exchange.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "argv",
    [[], ["GET"], ["GET", "items", "--no-such-option"], ["GET", "items", "--request-id", "bad id"]],
)
def test_bad_arguments_exit_2_with_usage(argv, capsys, monkeypatch):
    result = run_command("api_request", *argv, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert "usage: manage.py api_request" in result.err


@pytest.mark.django_db
def test_help_shows_examples(capsys, monkeypatch):
    result = run_command("api_request", "--help", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert "examples:\n  manage.py api_request GET whoami\n" in result.out
    assert "--data @item.json" in result.out
    assert "Exit status: 0" in result.out


def test_secrets_the_api_echoes_are_scrubbed_from_the_output(api_config):
    from api_client.models import Token

    api_request("GET", "whoami")  # obtain a token
    token = Token.objects.get()

    out, _ = api_request(
        "GET",
        "echo",
        "--header",
        f"X-Echo-Token: {token.access_token}",
        "--header",
        f"X-Echo-Refresh: {token.refresh_token}",
        "--header",
        f"X-Echo-Secret: {api_config.CLIENT_SECRET}",
    )

    echoed = body_of(out)["headers"]
    assert echoed["X-Echo-Token"] == "[redacted]"
    assert echoed["X-Echo-Refresh"] == "[redacted]"
    assert echoed["X-Echo-Secret"] == "[redacted]"
    for secret in (token.access_token, token.refresh_token, api_config.CLIENT_SECRET):
        assert secret not in out


def test_a_data_file_of_the_body_limit_is_sent_and_one_byte_more_is_not(configure_api, tmp_path):
    configure_api(MAX_REQUEST_BYTES=100)
    body = tmp_path / "item.json"
    body.write_text('{"name": "at the limit"' + " " * 76 + "}", encoding="utf-8")
    assert body.stat().st_size == 100

    out, _ = api_request("POST", "items", "--data", f"@{body}")
    body.write_text(body.read_text() + " ", encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        api_request("POST", "items", "--data", f"@{body}")

    assert body_of(out)["name"] == "at the limit"
    assert str(caught.value) == (
        f"--data file {body} is larger than 100 bytes (POC_API_MAX_REQUEST_BYTES); "
        "nothing was sent."
    )
    assert caught.value.returncode == 2
    assert Exchange.objects.filter(kind=Exchange.Kind.API).count() == 1


def test_standard_input_over_the_body_limit_exits_2(configure_api, capsys, monkeypatch):
    configure_api(MAX_REQUEST_BYTES=100)
    fake_stdin(monkeypatch, b"[" + b" " * 200 + b"]")

    result = run_command(
        "api_request", "POST", "items", "--data", "@-", capsys=capsys, monkeypatch=monkeypatch
    )

    assert result.status == 2
    assert result.err == (
        "CommandError: --data from standard input is larger than 100 bytes "
        "(POC_API_MAX_REQUEST_BYTES); nothing was sent.\n"
    )
    assert Exchange.objects.count() == 0


def bytes_taken_before_refusal(data: str, feed: str | None = None) -> tuple[int, str]:
    """Run ``api_request POST items --data DATA`` in a process of its own and write 50 MB to
    standard input, or to the named pipe ``feed``, until it stops reading: ``(bytes it took,
    stderr)``. The pipe's own buffer aside, a command that reads only limit + 1 bytes takes
    only those."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "api_request", "POST", "items", "--data", data],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "POC_API_MAX_REQUEST_BYTES": "1000000",
        },
        stdin=subprocess.DEVNULL if feed else subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    written = 0
    chunk = b" " * 65536
    try:
        with open(feed, "wb") if feed else process.stdin as sink:
            while written < 50_000_000:
                sink.write(chunk)
                written += len(chunk)
    except BrokenPipeError:
        pass
    err = process.stderr.read()
    assert process.wait(timeout=60) == 2, err
    return written, err.decode()


@pytest.mark.django_db(transaction=True)
def test_data_from_an_endless_standard_input_is_refused_after_the_limit():
    taken, err = bytes_taken_before_refusal("@-")

    assert err == (
        "CommandError: --data from standard input is larger than 1000000 bytes "
        "(POC_API_MAX_REQUEST_BYTES); nothing was sent.\n"
    )
    assert taken < 1_000_001 + 1_000_000  # the limit, and pipe buffers far below 50 MB


@pytest.mark.django_db(transaction=True)
def test_a_data_file_that_never_ends_is_refused_after_the_limit(tmp_path):
    fifo = tmp_path / "endless.json"
    os.mkfifo(fifo)

    taken, err = bytes_taken_before_refusal(f"@{fifo}", feed=str(fifo))

    assert f"--data file {fifo} is larger than 1000000 bytes" in err
    assert taken < 1_000_001 + 1_000_000

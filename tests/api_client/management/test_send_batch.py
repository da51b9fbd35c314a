"""manage.py send_batch against the live sandbox."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from api_client.models import Exchange
from sandbox import stats
from tests.helpers.exchanges import TTY, fake_stdin, run_command
from tests.helpers.processes import ROOT, database_url_for_subprocess


def write_lines(path: Path, *items: object) -> str:
    path.write_text(
        "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items),
        encoding="utf-8",
    )
    return str(path)


def send_batch(*argv: str, stdout: StringIO | None = None) -> tuple[str, str]:
    out = StringIO() if stdout is None else stdout
    err = StringIO()
    call_command("send_batch", *argv, stdout=out, stderr=err, skip_checks=True)
    return out.getvalue(), err.getvalue()


def test_sends_every_line_and_prints_a_line_per_result_and_a_summary(api_config, tmp_path):
    source = write_lines(
        tmp_path / "calls.jsonl",
        {"path": "whoami"},
        {"method": "POST", "path": "items", "json": {"name": "widget"}},
        "",
        {"path": "echo", "query": {"q": "1"}, "headers": {"X-Trace": "t"}},
    )

    out, _ = send_batch(source, "--concurrency", "2")

    lines = out.splitlines()
    assert sorted(line.split(":")[0] for line in lines[:3]) == ["line 1", "line 2", "line 4"]
    assert "line 2: 201 POST items (" in out
    batch_id = Exchange.objects.filter(kind=Exchange.Kind.API).first().batch_id
    assert lines[3].startswith("Sent 3 requests in ")  # and "Sent 1 request": see below
    assert f"(batch {batch_id}): 3 succeeded, 0 failed." in lines[3]
    assert lines[4] == "By status: 200 x 2, 201 x 1."
    assert lines[5].startswith("Latency: p50 ") and " ms, p95 " in lines[5]
    exchanges = Exchange.objects.filter(kind=Exchange.Kind.API)
    assert exchanges.count() == 3
    assert set(exchanges.values_list("batch_id", flat=True)) == {batch_id}
    assert len(set(exchanges.values_list("request_id", flat=True))) == 1


def test_any_failure_exits_1_after_the_summary(api_config, tmp_path, capsys, monkeypatch):
    source = write_lines(
        tmp_path / "calls.jsonl",
        {"path": "whoami"},
        {"path": "items/999999"},
        {"path": "echo", "query": {"status": "500"}},
    )

    result = run_command(
        "send_batch", source, "--skip-checks", capsys=capsys, monkeypatch=monkeypatch
    )

    assert result.status == 1
    assert "1 succeeded, 2 failed." in result.out
    assert "By status: 200 x 1, 404 x 1, 500 x 1." in result.out
    assert "CommandError: 2 of 3 requests failed; the admin lists them under batch " in result.err


def test_a_request_that_gets_no_answer_counts_as_failed_by_its_error(
    configure_api, tmp_path, capsys, monkeypatch
):
    configure_api(READ_TIMEOUT=0.3, RETRIES=0)
    source = write_lines(tmp_path / "c.jsonl", {"path": "echo", "query": {"delay": "1"}})

    result = run_command("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert "line 1: timeout GET echo: " in result.out
    assert "By status: timeout x 1." in result.out
    assert "Latency: no answers." in result.out


def test_reads_standard_input(api_config, monkeypatch):
    fake_stdin(monkeypatch, b'{"path": "whoami"}\n{"path": "echo"}\n')

    out, _ = send_batch("-")

    assert "2 succeeded, 0 failed." in out


def test_a_terminal_gets_a_progress_bar_and_the_failures(api_config, tmp_path):
    source = write_lines(
        tmp_path / "calls.jsonl", *([{"path": "echo"}] * 5), {"path": "items/999999"}
    )

    terminal = TTY()
    with pytest.raises(CommandError):
        send_batch(source, "--concurrency", "1", stdout=terminal)

    out = terminal.getvalue()
    assert "\r\x1b[2K[" in out
    assert "] 6/6  1 failed" in out
    assert "line 6: 404 GET items/999999" in out
    assert "line 1: 200" not in out  # successes only move the bar
    assert "5 succeeded, 1 failed." in out


def test_an_empty_file_sends_nothing(api_config, tmp_path):
    source = tmp_path / "empty.jsonl"
    source.write_text("\n\n", encoding="utf-8")

    out, _ = send_batch(str(source))

    assert out == f"No requests in {source}; nothing was sent.\n"
    assert stats.grant_count() == 0


def test_a_byte_order_mark_is_ignored(api_config, tmp_path):
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"path": "whoami"}\n')

    out, _ = send_batch(str(source))

    assert "1 succeeded" in out


def test_malformed_lines_are_reported_with_their_numbers_and_nothing_is_sent(
    configure_api, closed_port, tmp_path, capsys, monkeypatch
):
    nowhere = f"http://127.0.0.1:{closed_port}"
    configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token")
    source = tmp_path / "bad.jsonl"
    source.write_bytes(
        b'{"path": "whoami"}\n'
        b'{"path": \n'
        b"[1, 2]\n"
        b'{"method": "BREW", "path": "x"}\n'
        b'{"method": "GET"}\n'
        b'{"path": "../oauth/token"}\n'
        b'{"path": "x", "body": "?"}\n'
        b'{"path": "x", "json": {"a": 1}}\n'
        b'{"path": "\xff"}\n'
        b'{"path": "whoami"}\n'
    )

    result = run_command("send_batch", str(source), capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    problems = [line for line in result.err.splitlines() if line.startswith("line ")]
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in range(2, 10)]
    assert "line 2: not valid JSON (Expecting value at column 10)." in problems
    assert "line 3: expected an object" in problems[1]
    assert "line 4: Unknown method 'BREW'" in problems[2]
    assert "line 5: The path is missing." in problems
    assert "line 7: Unknown request field(s): body" in problems[5]
    assert "line 8: A GET request cannot have a body." in problems
    assert "line 9: not UTF-8 text." in problems
    assert f"CommandError: 8 malformed lines in {source}; nothing was sent." in result.err
    assert Exchange.objects.count() == 0


def test_only_the_first_problems_are_listed(configure_api, tmp_path):
    source = write_lines(tmp_path / "bad.jsonl", *(["nope"] * 25))

    with pytest.raises(CommandError) as caught:
        call_command("send_batch", source, stdout=StringIO(), stderr=(err := StringIO()))

    assert caught.value.returncode == 2
    assert err.getvalue().count("not valid JSON") == 20
    assert "... and 5 more." in err.getvalue()
    assert "25 malformed lines" in str(caught.value)


@pytest.mark.parametrize("concurrency", ["0", "17", "-3"])
def test_concurrency_outside_the_pool_size_exits_2(api_config, tmp_path, concurrency):
    source = write_lines(tmp_path / "c.jsonl", {"path": "whoami"})

    with pytest.raises(CommandError) as caught:
        send_batch(source, "--concurrency", concurrency)

    assert caught.value.returncode == 2
    assert "--concurrency must be between 1 and 16" in str(caught.value)
    assert stats.grant_count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: FILE|-"),
        (["x.jsonl", "--concurrency", "many"], "invalid int value: 'many'"),
        (["x.jsonl", "y.jsonl"], "unrecognized arguments: y.jsonl"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys, monkeypatch):
    result = run_command("send_batch", *argv, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert message in result.err


@pytest.mark.django_db
def test_a_missing_file_exits_2(capsys, monkeypatch, tmp_path):
    result = run_command(
        "send_batch", str(tmp_path / "nope.jsonl"), capsys=capsys, monkeypatch=monkeypatch
    )

    assert result.status == 2
    assert "Cannot read " in result.err and "No such file or directory" in result.err


@pytest.mark.django_db
def test_help_shows_examples_and_the_line_format(capsys, monkeypatch):
    result = run_command("send_batch", "--help", capsys=capsys, monkeypatch=monkeypatch)

    assert "examples:\n  manage.py send_batch requests.jsonl\n" in result.out
    assert "printf '%s\\n'" in result.out
    assert 'only "path" is required' in result.out


def test_one_request_is_counted_in_the_singular(api_config, tmp_path, capsys, monkeypatch):
    source = write_lines(tmp_path / "one.jsonl", {"path": "items/999999"})

    result = run_command("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert "Sent 1 request in " in result.out
    assert "CommandError: 1 of 1 request failed; the admin lists it under batch " in result.err


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"method": "POST", "path": "x", "json": [1e999]}', "the number 1e999 is out of range."),
        ('{"method": "POST", "path": "x", "json": -1E400}', "the number -1E400 is out of range."),
        ('{"method": "POST", "path": "x", "json": NaN}', "NaN is not a JSON value"),
        ('{"method": "POST", "path": "x", "json": {"a": Infinity}}', "Infinity is not a JSON"),
        ('{"method": "POST", "path": "x", "json": -Infinity}', "-Infinity is not a JSON value"),
        (
            '{"method": "POST", "path": "x", "json": ' + "7" * 5000 + "}",
            "the number 77777777777777777777... has 5000 digits; at most 4300 are allowed.",
        ),
        ('{"path": "x", "query": {"n": 1e999}}', "the number 1e999 is out of range."),
        ('{"method": "POST", "path": "x", "json": ' + "[" * 100_000, "it is nested too deeply."),
        (
            '{"method": "POST", "path": "x", "json": ' + "[" * 101 + "]" * 101 + "}",
            "The body is nested more than 100 levels deep.",
        ),
    ],
)
def test_numbers_and_nesting_python_cannot_hold_are_refused_by_line(
    configure_api, closed_port, tmp_path, capsys, monkeypatch, line, problem
):
    nowhere = f"http://127.0.0.1:{closed_port}"
    configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token")
    source = write_lines(tmp_path / "numbers.jsonl", {"path": "whoami"}, {"path": "a"}, line)

    result = run_command("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert f"line 3: {problem}" in result.err
    assert result.err.endswith(f"CommandError: 1 malformed line in {source}; nothing was sent.\n")
    assert "Traceback" not in result.err
    assert Exchange.objects.count() == 0


def test_a_line_longer_than_the_body_limit_and_its_allowance_is_refused_by_line(
    configure_api, closed_port, tmp_path, capsys, monkeypatch
):
    from api_client.management.commands.send_batch import ENVELOPE_ALLOWANCE

    nowhere = f"http://127.0.0.1:{closed_port}"
    configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token", MAX_REQUEST_BYTES=100)
    limit = 100 + ENVELOPE_ALLOWANCE

    def padded(size: int) -> str:  # a valid request line of exactly `size` bytes
        return '{"path": "whoami"' + " " * (size - 18) + "}"

    source = write_lines(
        tmp_path / "long.jsonl", padded(limit), padded(limit + 1), "x" * 3 * limit, padded(20)
    )

    result = run_command("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    problems = [line for line in result.err.splitlines() if line.startswith("line ")]
    assert problems == [
        f"line 2: longer than {limit} bytes (POC_API_MAX_REQUEST_BYTES plus "
        f"{ENVELOPE_ALLOWANCE} for the method, path, query and headers).",
        f"line 3: longer than {limit} bytes (POC_API_MAX_REQUEST_BYTES plus "
        f"{ENVELOPE_ALLOWANCE} for the method, path, query and headers).",
    ]  # the line after a long one is read as the next line, as it should
    assert "CommandError: 2 malformed lines" in result.err
    assert Exchange.objects.count() == 0


PEAK_MEMORY = """
import sys, tracemalloc
import django
django.setup()
from django.core.management import ManagementUtility
tracemalloc.start()
try:
    ManagementUtility(["manage.py", *sys.argv[1:]]).execute()
    status = 0
except SystemExit as exc:
    status = exc.code
print(status, tracemalloc.get_traced_memory()[1])
"""


def peak_memory(*argv: str) -> tuple[int, int, str]:
    """``(exit status, peak bytes allocated, stderr)`` of a manage.py command in a process of its
    own, on the test database."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, *argv],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pocclient.settings",
            "DATABASE_URL": database_url_for_subprocess(),
            "POC_API_MAX_REQUEST_BYTES": "1000000",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    status, peak = result.stdout.split()
    return int(status), int(peak), result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_50_mb_line_is_refused_without_being_read_into_memory(tmp_path):
    small = write_lines(tmp_path / "small.jsonl", {"path": "whoami"}, {"path": 1})
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as stream:
        stream.write(b'{"path": "whoami"}\n{"method": "POST", "path": "x", "json": "')
        for _ in range(50):
            stream.write(b"y" * 1_000_000)
        stream.write(b'"}\n{"path": "whoami"}\n')

    _, baseline, _ = peak_memory("send_batch", small)
    status, peak, err = peak_memory("send_batch", str(huge))

    assert status == 2, err
    assert "line 2: longer than 1065536 bytes" in err
    assert "1 malformed line in" in err
    # A chunk of the line, the next one and their join: a few times the limit, never 50 MB.
    assert peak - baseline < 4 * 1_065_536, f"{(peak - baseline) / 1e6:.1f} MB for a 50 MB line"

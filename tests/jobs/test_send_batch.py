"""manage.py send_batch: a job planned from JSON Lines (or a template and a data file), run in
this process when no worker runs it, against the live sandbox and the hostile API."""

import json
import os
import re
import signal
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from api_client.models import Exchange
from jobs.models import Item, Job
from jobs.planning import ENVELOPE_ALLOWANCE
from jobs.runner import Runner
from sandbox import stats
from tests.helpers.exchanges import TTY, fake_stdin, run_command
from tests.helpers.hostile import CONFIG
from tests.helpers.processes import ROOT, database_url_for_subprocess, interruptible
from tests.helpers.waiting import settled

pytestmark = pytest.mark.django_db(transaction=True)


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


run = run_command  # a jobs command, found by its name as manage.py finds it


def the_job() -> Job:
    return Job.objects.get()


# --- following a job -------------------------------------------------------------------------


def test_plans_a_job_runs_it_here_without_a_worker_and_prints_a_summary(api_config, tmp_path):
    source = write_lines(
        tmp_path / "calls.jsonl",
        {"path": "whoami"},
        {"method": "POST", "path": "items", "json": {"name": "widget"}},
        "",
        {"path": "echo", "query": {"q": "1"}, "headers": {"X-Trace": "t"}},
    )

    out, err = send_batch(source, "--concurrency", "2")

    job = the_job()
    lines = out.splitlines()
    assert lines[0] == f"Planned job {job.key}: 3 calls from {source}."
    assert lines[1] == "No worker is running, so this command sends the calls itself."
    assert lines[-4] == "100% (3 of 3 calls done)"
    assert lines[-3].startswith("Sent 3 requests in ")
    assert lines[-3].endswith(f"(job {job.key}): 3 succeeded, 0 failed.")
    assert lines[-2] == "By status: 200 x 2, 201 x 1."
    assert lines[-1].startswith("Latency: p50 ") and " ms, p95 " in lines[-1]
    assert err == ""
    assert (job.state, job.total, job.origin) == (Job.State.FINISHED, 3, Job.Origin.COMMAND)
    assert (job.name, job.created_by, job.concurrency) == (source, "command send_batch", 2)
    assert job.counts()["answered"] == 3
    exchanges = Exchange.objects.filter(kind=Exchange.Kind.API)
    assert exchanges.count() == 3
    assert set(exchanges.values_list("batch_id", flat=True)) == {job.key}
    # Sent here, they carry the run's request id and actor, as they always have.
    assert len(set(exchanges.values_list("request_id", flat=True))) == 1
    assert set(exchanges.values_list("actor", flat=True)) == {"command send_batch"}


def test_any_failure_exits_1_after_the_summary(api_config, tmp_path, capsys, monkeypatch):
    source = write_lines(
        tmp_path / "calls.jsonl",
        {"path": "whoami"},
        {"path": "items/999999"},
        {"path": "echo", "query": {"status": "500"}},
    )

    result = run("send_batch", source, "--skip-checks", capsys=capsys, monkeypatch=monkeypatch)

    key = the_job().key
    assert result.status == 1
    assert "item 1: 404 GET /items/999999\nitem 2: 500 GET /echo?status=500\n" in result.out
    assert "1 succeeded, 2 failed." in result.out
    assert "By status: 200 x 1, 404 x 1, 500 x 1." in result.out
    assert f"CommandError: 2 of 3 requests failed; the admin lists them under job {key}." in (
        result.err
    )


def test_a_request_that_gets_no_answer_counts_as_failed_by_its_error(
    configure_api, tmp_path, capsys, monkeypatch
):
    configure_api(READ_TIMEOUT=0.3, RETRIES=0)
    source = write_lines(tmp_path / "c.jsonl", {"path": "echo", "query": {"delay": "1"}})

    result = run("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert "item 0: timeout GET /echo?delay=1: " in result.out
    assert "By status: timeout x 1." in result.out
    assert "Latency: no answers." in result.out
    assert Item.objects.get().state == Item.State.FAILED  # a GET: safe to send again


def test_reads_standard_input(api_config, monkeypatch):
    fake_stdin(monkeypatch, b'{"path": "whoami"}\n{"path": "echo"}\n')

    out, _ = send_batch("-", "--name", "from a pipe")

    assert "2 succeeded, 0 failed." in out
    assert "2 calls from standard input." in out
    assert the_job().name == "from a pipe"


def test_a_terminal_gets_a_progress_bar_rewritten_in_place(api_config, tmp_path):
    source = write_lines(
        tmp_path / "calls.jsonl", *([{"path": "echo"}] * 5), {"path": "items/999999"}
    )

    terminal = TTY()
    with pytest.raises(CommandError):
        send_batch(source, "--concurrency", "1", stdout=terminal)

    out = terminal.getvalue()
    assert "\r\x1b[2K[" in out
    assert "] 6/6 100%  1 failing" in out
    assert "% (" not in out  # no lines per 5 %: the bar is one line, redrawn
    assert "item 5: 404 GET /items/999999" in out
    assert "5 succeeded, 1 failed." in out


def test_without_a_terminal_it_prints_a_line_each_5_percent(api_config, tmp_path):
    source = write_lines(tmp_path / "calls.jsonl", *([{"path": "echo"}] * 40))

    out, _ = send_batch(source, "--concurrency", "4")

    progress = [line for line in out.splitlines() if re.match(r" *\d+% \(", line)]
    percents = [int(line.split("%")[0]) for line in progress]
    assert percents == sorted(set(percents))  # rising, each at most once
    assert len(progress) <= 21 and progress[-1] == "100% (40 of 40 calls done)"
    assert "\r" not in out


def test_an_empty_file_plans_and_sends_nothing(api_config, tmp_path):
    source = tmp_path / "empty.jsonl"
    source.write_text("\n\n", encoding="utf-8")

    out, _ = send_batch(str(source))

    assert out == f"No requests in {source}; nothing was sent.\n"
    assert Job.objects.count() == 0
    assert stats.grant_count() == 0


def test_a_byte_order_mark_is_ignored(api_config, tmp_path):
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"path": "whoami"}\n')

    out, _ = send_batch(str(source))

    assert "1 succeeded" in out


def test_one_request_is_counted_in_the_singular(api_config, tmp_path, capsys, monkeypatch):
    source = write_lines(tmp_path / "one.jsonl", {"path": "items/999999"})

    result = run("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert "Planned job " in result.out and ": 1 call from " in result.out
    assert "Sent 1 request in " in result.out
    assert "CommandError: 1 of 1 request failed; the admin lists it under job " in result.err


# --- detached --------------------------------------------------------------------------------


def test_detach_plans_and_queues_the_job_and_prints_its_key_last(
    configure_api, closed_port, tmp_path
):
    nowhere = f"http://127.0.0.1:{closed_port}"
    configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token")
    source = write_lines(tmp_path / "calls.jsonl", {"path": "a"}, {"path": "b"})

    out, err = send_batch(source, "--detach", "--concurrency", "3")

    job = the_job()
    assert out.splitlines()[-1] == job.key
    assert f"`manage.py show_job {job.key} --wait` follows it" in out
    assert err.startswith("Warning: No worker has been seen for ")
    assert (job.state, job.total, job.concurrency) == (Job.State.RUNNING, 2, 3)
    assert job.counts()["planned"] == 2
    tasks = DBTaskResult.objects.filter(task_path="jobs.tasks.run_job", status="READY")
    assert [t.args_kwargs["args"] for t in tasks] == [[job.pk]]
    assert Exchange.objects.count() == 0  # nothing sent: a worker will


# --- a template and a data file --------------------------------------------------------------


def test_a_template_is_filled_from_each_csv_row(hostile_client, hostile, tmp_path):
    template = tmp_path / "template.json"
    template.write_text(
        json.dumps(
            {
                "method": "PUT",
                "path": "learners/{{id}}",
                "query": {"by": "{{name}}"},
                "json": {"name": "{{name}}", "score": "{{score}}"},
            },
            indent=2,
        )
    )
    data = tmp_path / "learners.csv"
    data.write_text("id,name,score\n7,Ada,9.5\n8,Bob,7\n")

    out, _ = send_batch(str(template), "--data", str(data))

    job = the_job()
    assert f"Planned job {job.key}: 2 calls from {template} with {data}." in out
    assert job.name == f"{template} with {data}"
    assert "2 succeeded, 0 failed." in out
    received = sorted(
        (r.method, r.path, json.loads(r.body)) for r in hostile.received if "learners" in r.path
    )
    assert received == [
        ("PUT", "/api/learners/7?by=Ada", {"name": "Ada", "score": "9.5"}),
        ("PUT", "/api/learners/8?by=Bob", {"name": "Bob", "score": "7"}),
    ]


def test_json_lines_rows_keep_their_types_in_the_body(hostile_client, hostile, tmp_path):
    template = write_lines(
        tmp_path / "t.json", {"method": "POST", "path": "scores", "json": {"score": "{{n}}"}}
    )
    data = write_lines(tmp_path / "rows.jsonl", {"n": 1}, {"n": [2, 3]})

    send_batch(template, "--data", data)

    bodies = [json.loads(r.body) for r in hostile.received if r.path == "/api/scores"]
    assert sorted(bodies, key=str) == [{"score": 1}, {"score": [2, 3]}]


def test_a_row_without_a_column_the_template_names_is_refused_by_line(
    configure_api, tmp_path, capsys, monkeypatch
):
    template = write_lines(tmp_path / "t.json", {"path": "learners/{{id}}/{{name}}"})
    data = tmp_path / "rows.csv"
    data.write_text("id\n1\n2\n")

    result = run("send_batch", template, "--data", str(data), capsys=capsys,
                 monkeypatch=monkeypatch)  # fmt: skip

    assert result.status == 2
    assert "line 2: the row has no column 'name', which the template names." in result.err
    assert "line 3: the row has no column 'name'" in result.err
    assert f"CommandError: 2 malformed lines in {data}; nothing was sent." in result.err
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("template", "data", "extra", "message"),
    [
        ('{"path": ', "id\n1\n", [], "is not valid JSON (Expecting value at line 1)"),
        ('["x"]', "id\n1\n", [], "must be one request, an object such as"),
        ('{"path": "x/{{id}}"}', "id\n1\n", ["--data-format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_a_bad_template_or_data_format_exits_2(
    configure_api, tmp_path, capsys, monkeypatch, template, data, extra, message
):
    (tmp_path / "t.json").write_text(template)
    (tmp_path / "rows.csv").write_text(data)

    result = run("send_batch", str(tmp_path / "t.json"), "--data", str(tmp_path / "rows.csv"),
                 *extra, capsys=capsys, monkeypatch=monkeypatch)  # fmt: skip

    assert result.status == 2
    assert message in result.err
    assert Job.objects.count() == 0


def test_a_data_file_of_unknown_format_must_say_which(configure_api, tmp_path, capsys, monkeypatch):
    template = write_lines(tmp_path / "t.json", {"path": "x/{{id}}"})
    (tmp_path / "rows.txt").write_text("id\n1\n")

    result = run("send_batch", template, "--data", str(tmp_path / "rows.txt"), capsys=capsys,
                 monkeypatch=monkeypatch)  # fmt: skip

    assert result.status == 2
    assert "give --data-format csv or jsonl" in result.err


# --- the idempotency header ------------------------------------------------------------------


def test_each_call_carries_its_own_idempotency_key_fixed_at_planning(
    hostile_client, hostile, tmp_path
):
    source = write_lines(tmp_path / "c.jsonl", *([{"method": "POST", "path": "orders"}] * 3))

    send_batch(source, "--idempotency-header", "Idempotency-Key")

    job = the_job()
    keys = set(job.items.values_list("idempotency_key", flat=True))
    sent = {r.header("Idempotency-Key") for r in hostile.received if r.path == "/api/orders"}
    assert job.idempotency_header == "Idempotency-Key"
    assert len(keys) == 3 and sent == keys


def test_an_idempotency_header_that_cannot_be_sent_exits_2(
    configure_api, tmp_path, capsys, monkeypatch
):
    source = write_lines(tmp_path / "c.jsonl", {"method": "POST", "path": "orders"})

    result = run("send_batch", source, "--idempotency-header", "Bad Name", capsys=capsys,
                 monkeypatch=monkeypatch)  # fmt: skip

    assert result.status == 2
    assert "The idempotency header 'Bad Name' is not one that can be sent" in result.err
    assert Job.objects.count() == 0


# --- bad input -------------------------------------------------------------------------------


def test_malformed_lines_are_reported_with_their_numbers_and_nothing_is_planned(
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

    result = run("send_batch", str(source), capsys=capsys, monkeypatch=monkeypatch)

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
    assert Job.objects.count() == 0 and Item.objects.count() == 0


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
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: FILE|-"),
        (["x.jsonl", "--concurrency", "many"], "invalid int value: 'many'"),
        (["x.jsonl", "y.jsonl"], "unrecognized arguments: y.jsonl"),
        (["-", "--data", "-"], "FILE and --data cannot both be standard input."),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys, monkeypatch):
    result = run("send_batch", *argv, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert message in result.err


def test_a_missing_file_exits_2(capsys, monkeypatch, tmp_path):
    result = run("send_batch", str(tmp_path / "nope.jsonl"), capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert "Cannot read " in result.err and "No such file or directory" in result.err


def test_help_shows_examples_and_the_line_format(capsys, monkeypatch):
    result = run("send_batch", "--help", capsys=capsys, monkeypatch=monkeypatch)

    assert "examples:\n  manage.py send_batch requests.jsonl\n" in result.out
    assert "printf '%s\\n'" in result.out
    assert 'only "path" is required' in result.out
    assert "--detach" in result.out and "--data FILE|-" in result.out


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

    result = run("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert f"line 3: {problem}" in result.err
    assert result.err.endswith(f"CommandError: 1 malformed line in {source}; nothing was sent.\n")
    assert "Traceback" not in result.err
    assert Exchange.objects.count() == 0 and Job.objects.count() == 0


def test_a_line_longer_than_the_body_limit_and_its_allowance_is_refused_by_line(
    configure_api, closed_port, tmp_path, capsys, monkeypatch
):
    nowhere = f"http://127.0.0.1:{closed_port}"
    configure_api(BASE_URL=f"{nowhere}/api/", TOKEN_URL=f"{nowhere}/token", MAX_REQUEST_BYTES=100)
    limit = 100 + ENVELOPE_ALLOWANCE

    def padded(size: int) -> str:  # a valid request line of exactly `size` bytes
        return '{"path": "whoami"' + " " * (size - 18) + "}"

    source = write_lines(
        tmp_path / "long.jsonl", padded(limit), padded(limit + 1), "x" * 3 * limit, padded(20)
    )

    result = run("send_batch", source, capsys=capsys, monkeypatch=monkeypatch)

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


# --- memory: a long line, and many lines -----------------------------------------------------

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


def subprocess_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pocclient.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "POC_EMBEDDED_WORKER": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        **extra,
    }


def peak_memory(*argv: str) -> tuple[int, int, str]:
    """``(exit status, peak bytes allocated, stderr)`` of a manage.py command in a process of its
    own, on the test database (with DEBUG off: its query log would grow with the job)."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, *argv],
        cwd=ROOT,
        env=subprocess_env(
            POC_API_MAX_REQUEST_BYTES="1000000", DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    *_, last = result.stdout.splitlines() or [""]
    status, peak = last.split()
    return int(status), int(peak), result.stderr


def test_a_50_mb_line_is_refused_without_being_read_into_memory(tmp_path):
    small = write_lines(tmp_path / "small.jsonl", {"path": "whoami"}, {"path": 1})
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as stream:
        stream.write(b'{"path": "whoami"}\n{"method": "POST", "path": "x", "json": "')
        for _ in range(50):
            stream.write(b"y" * 1_000_000)
        stream.write(b'"}\n{"path": "whoami"}\n')

    _, baseline, _ = peak_memory("send_batch", "--skip-checks", small)
    status, peak, err = peak_memory("send_batch", "--skip-checks", str(huge))

    assert status == 2, err
    assert "line 2: longer than 1065536 bytes" in err
    assert "1 malformed line in" in err
    # A chunk of the line, the next one and their join: a few times the limit, never 50 MB.
    assert peak - baseline < 4 * 1_065_536, f"{(peak - baseline) / 1e6:.1f} MB for a 50 MB line"


def test_planning_memory_does_not_grow_with_the_number_of_lines(tmp_path):
    def calls(path: Path, count: int) -> str:
        line = json.dumps({"method": "POST", "path": "items", "json": {"name": "w" * 100}})
        path.write_text((line + "\n") * count)
        return str(path)

    few, many = calls(tmp_path / "few.jsonl", 10_000), calls(tmp_path / "many.jsonl", 60_000)

    status_few, peak_few, err = peak_memory("send_batch", "--skip-checks", few, "--detach")
    assert status_few == 0, err
    status_many, peak_many, err = peak_memory("send_batch", "--skip-checks", many, "--detach")
    assert status_many == 0, err

    assert Job.objects.filter(total=60_000).exists()
    # Held: one chunk of items (5,000) at a time. 50,000 more lines held as requests would
    # cost tens of MB; written in chunks, they cost next to nothing.
    assert peak_many - peak_few < 0.2 * peak_few, (
        f"{peak_few / 1e6:.1f} -> {peak_many / 1e6:.1f} MB"
    )


# --- workers and Ctrl-C ----------------------------------------------------------------------


def api_environ(base: str) -> dict[str, str]:
    return {
        "POC_API_BASE_URL": f"{base}/api/",
        "POC_API_TOKEN_URL": f"{base}/oauth/token",
        "POC_API_CLIENT_ID": CONFIG["client_id"],
        "POC_API_CLIENT_SECRET": CONFIG["client_secret"],
        "POC_API_RETRIES": "0",
    }


def test_with_a_worker_running_the_command_follows_the_job_and_leaves_the_sending_to_it(
    hostile_client, hostile, tmp_path
):
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-startup-delay",
            "--interval",
            "0.2",
            "--skip-checks",
        ],
        cwd=ROOT,
        env=subprocess_env(**api_environ(hostile.url), POC_JOBS_BEAT="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from jobs.models import WorkerBeat

        assert settled(lambda: WorkerBeat.objects.exists(), True, timeout=60)
        source = write_lines(tmp_path / "c.jsonl", *({"path": f"w/{n}"} for n in range(10)))

        out, _ = send_batch(source)
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    job = the_job()
    assert "this command sends the calls itself" not in out
    assert "10 succeeded, 0 failed." in out
    assert job.state == Job.State.FINISHED
    # Sent by the worker, in the name of the job's maker: this command.
    actors = set(Exchange.objects.filter(batch_id=job.key).values_list("actor", flat=True))
    assert actors == {"command send_batch"}


def test_ctrl_c_leaves_the_job_running_and_says_how_to_follow_or_cancel_it(
    hostile_client, hostile, tmp_path
):
    calls = [
        {"method": "POST", "path": "slow", "query": {"delay": 0.3, "n": n}, "json": {"n": n}}
        for n in range(40)
    ]
    source = write_lines(tmp_path / "slow.jsonl", *calls)
    process = interruptible(
        [sys.executable, "manage.py", "send_batch", source, "--concurrency", "2", "--skip-checks"],
        cwd=ROOT,
        env=subprocess_env(**api_environ(hostile.url)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = settled(lambda: sum("/slow" in r.path for r in hostile.received) >= 4, True, 60)
        assert sent, "the command sent nothing"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    job = the_job()
    assert process.returncode == 130, err
    assert f"Interrupted: job {job.key} (" in err
    assert "goes on once a worker runs (`manage.py db_worker`)." in err
    assert f"Follow it with `manage.py show_job {job.key} --wait`" in err
    assert f"cancel it with `manage.py cancel_job {job.key}`." in err
    assert "Traceback" not in err
    assert "Stopping: waiting for the calls in flight to finish ..." in out
    counts = job.counts()
    assert job.state == Job.State.RUNNING
    assert counts["leased"] == counts["unknown"] == counts["failed"] == 0, counts
    assert 0 < counts["answered"] < 40 and counts["planned"] == 40 - counts["answered"]
    # It goes on where it was left, each call sent once.
    Runner(job.pk, client=hostile_client).run()
    job.refresh_from_db()
    assert job.state == Job.State.FINISHED and job.counts()["answered"] == 40
    reached = [r.path for r in hostile.received if "/slow" in r.path]
    assert len(reached) == len(set(reached)) == 40

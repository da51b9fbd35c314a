"""show_job, cancel_job, pause_job, resume_job and resend_job, on jobs run against the hostile
API (and, for ``show_job --wait``, by a real worker process)."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from jobs.models import Item, Job, WorkerBeat
from jobs.planning import plan
from jobs.runner import Runner
from tests.helpers.processes import ROOT
from tests.helpers.waiting import settled
from tests.jobs.test_send_batch import api_environ, run, subprocess_env, write_lines

pytestmark = pytest.mark.django_db(transaction=True)


def command(name: str, *argv: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *argv, stdout=out, stderr=err, skip_checks=True)
    return out.getvalue(), err.getvalue()


def planned(client, *paths: str, method: str = "GET") -> Job:
    calls = [{"method": method, "path": path} for path in paths]
    return plan(client, list(enumerate(calls, 1)), name="test calls", concurrency=2)


def ran(client, *paths: str, method: str = "GET") -> Job:
    job = planned(client, *paths, method=method)
    Runner(job.pk, client=client).run()
    job.refresh_from_db()
    return job


def tasks_of(job: Job) -> int:
    return sum(
        t.args_kwargs["args"] == [job.pk]
        for t in DBTaskResult.objects.filter(task_path="jobs.tasks.run_job", status="READY")
    )


# --- show_job --------------------------------------------------------------------------------


def test_show_job_describes_a_finished_job_for_people_by_id_or_key(hostile_client):
    job = ran(hostile_client, "a", "b", "c")

    by_id, _ = command("show_job", str(job.pk))
    by_key, err = command("show_job", job.key)

    assert by_id == by_key and err == ""
    lines = by_id.splitlines()
    assert lines[0] == f"Job {job.pk} ({job.key}) 'test calls': finished."
    assert "by Python code (origin Python); concurrency 2." in lines[1]
    assert lines[2].startswith("Progress: 3 of 3 calls done (100%), 0 failing")
    assert lines[3] == "Calls: 3 answered."
    assert lines[4] == "By status: 200 x 3."
    assert lines[5].startswith("Latency: p50 ") and ", mean " in lines[5]


def test_show_job_json_has_counts_keyed_by_every_item_state(hostile_client):
    job = ran(hostile_client, "a", "status?code=503")

    with pytest.raises(CommandError) as caught:
        call_command("show_job", job.key, "--json", stdout=(out := StringIO()), stderr=StringIO())

    described = json.loads(out.getvalue())
    assert caught.value.returncode == 1  # an answer of 503 is a failing call
    assert described["key"] == job.key and described["id"] == job.pk
    assert described["state"] == "finished" and described["total"] == 2
    assert described["counts"] == {
        "planned": 0,
        "leased": 0,
        "answered": 2,
        "failed": 0,
        "unknown": 0,
        "cancelled": 0,
    }
    assert described["by_status"] == {"200": 1, "503": 1}
    assert described["failing"] == 1


def test_show_job_of_a_job_that_waits_for_no_worker_warns(hostile_client, capsys, monkeypatch):
    job = planned(hostile_client, "a")

    result = run("show_job", str(job.pk), capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert "running." in result.out.splitlines()[0]
    assert "Calls: 1 planned." in result.out
    assert result.err.startswith("Warning: No worker has been seen for ")
    assert "`manage.py db_worker`" in result.err


@pytest.mark.parametrize("name", ["show_job", "cancel_job", "pause_job", "resume_job"])
@pytest.mark.parametrize("ident", ["999999", "f" * 32, "9" * 40, "nope"])
def test_an_unknown_job_exits_2(name, ident, capsys, monkeypatch):
    result = run(name, ident, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert f"CommandError: No job has the id or key '{ident}'." in result.err


def test_show_job_wait_follows_a_job_a_worker_runs_until_it_ends(
    hostile_client, hostile, tmp_path, capsys, monkeypatch
):
    source = write_lines(tmp_path / "c.jsonl", *({"path": f"w/{n}"} for n in range(20)))
    out, _ = command("send_batch", source, "--detach")
    key = out.splitlines()[-1]
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval", "0.2",
         "--skip-checks"],
        cwd=ROOT,
        env=subprocess_env(**api_environ(hostile.url), POC_JOBS_BEAT="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert settled(lambda: WorkerBeat.objects.exists(), True, timeout=60)
        result = run("show_job", key, "--wait", capsys=capsys, monkeypatch=monkeypatch)
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert "100% (20 of 20 calls done)" in lines
    assert lines[lines.index("100% (20 of 20 calls done)") + 1].endswith(": finished.")
    assert "Calls: 20 answered." in lines
    assert Job.objects.get(key=key).state == Job.State.FINISHED


def test_show_job_wait_json_prints_progress_on_stderr_and_json_on_stdout(hostile_client):
    job = ran(hostile_client, "a")

    out, err = command("show_job", str(job.pk), "--wait", "--json")

    assert json.loads(out)["counts"]["answered"] == 1
    assert "100% (1 of 1 call done)" in err


# --- pause, resume, cancel -------------------------------------------------------------------


def test_pause_and_resume_a_job(hostile_client, capsys, monkeypatch):
    job = planned(hostile_client, "a", "b")

    paused = run("pause_job", str(job.pk), capsys=capsys, monkeypatch=monkeypatch)
    again = run("pause_job", job.key, capsys=capsys, monkeypatch=monkeypatch)

    assert paused.status == 0
    assert paused.out == f"Done! Paused job {job.key}; `manage.py resume_job {job.key}` goes on.\n"
    assert Job.objects.get(pk=job.pk).state == Job.State.PAUSED
    assert again.status == 1
    assert "only a running job can be paused." in again.err
    assert Runner(job.pk, client=hostile_client).run()["sent"] == 0  # paused: nothing is sent

    resumed = run("resume_job", job.key, capsys=capsys, monkeypatch=monkeypatch)

    assert resumed.status == 0
    assert resumed.out == f"Done! Resumed job {job.key}: 2 calls left to send.\n"
    assert resumed.err.startswith("Warning: No worker has been seen")
    assert Job.objects.get(pk=job.pk).state == Job.State.RUNNING
    assert tasks_of(job) == 1  # queued for a worker
    assert Runner(job.pk, client=hostile_client).run()["sent"] == 2


def test_resume_of_a_job_that_is_not_paused_exits_1(hostile_client, capsys, monkeypatch):
    job = planned(hostile_client, "a")

    result = run("resume_job", job.key, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert f"CommandError: Job {job.key} is running; only a paused job can be resumed." in (
        result.err
    )


def test_cancel_a_job_cancels_what_was_not_sent(hostile_client, capsys, monkeypatch):
    job = planned(hostile_client, "a", "b", "c")

    result = run("cancel_job", str(job.pk), capsys=capsys, monkeypatch=monkeypatch)
    again = run("cancel_job", str(job.pk), capsys=capsys, monkeypatch=monkeypatch)
    shown = run("show_job", str(job.pk), capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert result.out == f"Done! Cancelled job {job.key}: 3 of 3 calls will not be sent.\n"
    assert Job.objects.get(pk=job.pk).state == Job.State.CANCELLED
    assert set(Item.objects.filter(job=job).values_list("state", flat=True)) == {"cancelled"}
    assert again.status == 1 and "there is nothing to cancel." in again.err
    assert shown.status == 1  # show_job: a cancelled call is not a clean end
    assert "Calls: 3 cancelled." in shown.out
    assert "3 cancelled." in shown.err


# --- resend ----------------------------------------------------------------------------------


def test_resend_failed_plans_them_again_and_a_runner_sends_them(
    hostile_client, hostile_config, closed_port, capsys, monkeypatch
):
    refused = hostile_config(BASE_URL=f"http://127.0.0.1:{closed_port}/api/")
    job = ran(refused, "a", "b")  # the API cannot be reached: failed, surely never sent
    assert job.counts()["failed"] == 2

    result = run("resend_job", job.key, "--failed", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert result.out == f"Done! Planned 2 failed calls of job {job.key} again.\n"
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.counts()["planned"] == 2
    assert tasks_of(job) == 1
    Runner(job.pk, client=hostile_config()).run()
    assert Job.objects.get(pk=job.pk).counts()["answered"] == 2


def test_resend_unknown_plans_calls_that_may_have_reached_the_api(
    hostile_client, capsys, monkeypatch
):
    job = ran(hostile_client, "reset", method="POST")  # cut off after sending: unknown
    assert job.counts()["unknown"] == 1
    shown = run("show_job", job.key, capsys=capsys, monkeypatch=monkeypatch)

    result = run("resend_job", str(job.pk), "--unknown", capsys=capsys, monkeypatch=monkeypatch)

    assert shown.status == 1 and f"1 unknown (resend_job {job.key} --unknown)" in shown.err
    assert result.status == 0
    assert result.out == f"Done! Planned 1 unknown call of job {job.key} again.\n"
    assert Job.objects.get(pk=job.pk).counts()["planned"] == 1


def test_resend_with_nothing_to_send_says_so(hostile_client, capsys, monkeypatch):
    job = ran(hostile_client, "a")

    result = run("resend_job", job.key, "--failed", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert result.out == f"Job {job.key} has no failed calls; nothing is sent again.\n"
    assert Job.objects.get(pk=job.pk).state == Job.State.FINISHED


def test_resend_of_a_job_being_planned_exits_1(capsys, monkeypatch):
    job = Job.objects.create()

    result = run("resend_job", job.key, "--failed", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 1
    assert f"CommandError: Job {job.key} is still being planned." in result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["1"], "one of the arguments --failed --unknown is required"),
        (["1", "--failed", "--unknown"], "not allowed with argument"),
        (["999999", "--failed"], "No job has the id or key '999999'."),
    ],
)
def test_resend_bad_arguments_exit_2(argv, message, capsys, monkeypatch):
    result = run("resend_job", *argv, capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert message in result.err


# --- what every job command shares -----------------------------------------------------------

COMMANDS = {
    "send_batch": ["-"],
    "show_job": ["1"],
    "cancel_job": ["1"],
    "pause_job": ["1"],
    "resume_job": ["1"],
    "resend_job": ["1", "--failed"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_examples_and_the_request_id_option(name, capsys, monkeypatch):
    result = run(name, "--help", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 0
    assert f"\nexamples:\n  manage.py {name}" in result.out
    assert "--request-id ID" in result.out


@pytest.mark.parametrize("name", COMMANDS)
def test_a_malformed_request_id_exits_2(name, capsys, monkeypatch):
    result = run(name, *COMMANDS[name], "--request-id=a/b", capsys=capsys, monkeypatch=monkeypatch)

    assert result.status == 2
    assert "argument --request-id: use 1 to 64 letters, digits and . _ : -" in result.err


@pytest.mark.parametrize("name", COMMANDS)
def test_a_never_migrated_database_is_one_line_and_exit_status_1(name, tmp_path, closed_port):
    nowhere = f"http://127.0.0.1:{closed_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "manage.py", name, *COMMANDS[name]],
        cwd=ROOT,
        env={
            **env,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}",
            "POC_API_BASE_URL": f"{nowhere}/api/",
            "POC_API_TOKEN_URL": f"{nowhere}/token",
        },
        input='{"path": "whoami"}\n',
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: The database has no tables yet; run `manage.py migrate` first.\n"
    )

"""The console's JSON endpoints for jobs (``docs/console.md`` has each request and answer).

``GET  /api/jobs``                       the jobs, newest first, a page at a time
``POST /api/jobs``                       make a job (what ``POST /api/batch`` takes) -> 201
``GET  /api/jobs/<id>``                  its progress (``jobs.progress.describe``)
``POST /api/jobs/<id>/<action>``         ``pause``, ``resume``, ``cancel``, ``resend``
``GET  /api/jobs/<id>/results``          a page of its results, or all as CSV or JSON Lines

``<id>`` is a job's number or its key. Making a job and acting on one take
``api_client.send_request``; its results take ``api_client.view_exchange``; its progress
and the list take either (a sender follows the jobs they start, a reader watches them).
"""

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from api_client.connections import may_read, may_send
from jobs import actions
from jobs.models import Job
from jobs.progress import RESULT_FIELDS, iter_csv, iter_jsonl, ordering, summaries
from jobs.tasks import start

from .forms import JobActionForm, JobFilterForm, JobResultsForm, ResendForm
from .intake import make_job, read_intake
from .jsonapi import (
    CONSOLE_PERMISSIONS,
    SEND,
    VIEW,
    BadInput,
    ConnectionRefused,
    connection_client,
    error_response,
    form_errors,
    json_endpoint,
    json_page,
    read_json,
    readable_rows,
    require,
)
from .payloads import job_detail, job_summary, result_row

PAGE_SIZE = 20
RESULTS_PAGE_SIZE = 100
ACTIONS = {"pause": actions.pause, "resume": actions.resume, "cancel": actions.cancel}


def _valid(form: forms.Form) -> dict[str, Any]:
    if not form.is_valid():
        raise BadInput(form_errors(form))
    return form.cleaned_data


def find_job(ref: str) -> Job | None:
    """The job numbered ``ref``, or whose key it is (the URLs take either)."""
    if ref.isdigit() and len(ref) < 20:
        found = Job.objects.filter(pk=int(ref)).first()
        if found is not None:
            return found
    return Job.objects.filter(key=ref).first()


def no_job(ref: str) -> JsonResponse:
    return error_response(404, "not_found", f"There is no job {ref}.")


def start_job(request: HttpRequest, *, default_name: str) -> Job:
    """Read the job the request carries, plan it and let it run (``BadInput`` if it is bad)."""
    intake = read_intake(
        request, lambda name: connection_client(request, name), default_name=default_name
    )
    job = make_job(intake, origin=Job.Origin.CONSOLE)
    start(job)
    return job


@json_endpoint("GET", "POST")
def jobs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        require(request, SEND, subject="Making a job")
        job = start_job(request, default_name="POST /api/jobs")
        payload = job_detail(job, can_send=True)
        return JsonResponse(payload, status=201, headers={"Location": payload["url"]})
    require(request, *CONSOLE_PERMISSIONS)
    filters = _valid(JobFilterForm(data=request.GET))
    page, size = filters["page"] or 1, filters["page_size"] or PAGE_SIZE
    rows = readable_rows(request, Job.objects.all(), filters["connection"])
    if filters["state"] == "active":
        rows = rows.filter(state__in=(Job.State.PLANNING, Job.State.RUNNING, Job.State.PAUSED))
    elif filters["state"]:
        rows = rows.filter(state=filters["state"])
    return json_page(rows, page, size, lambda found: list(map(job_summary, summaries(found))))


@json_endpoint("GET", permission=CONSOLE_PERMISSIONS)
def job(request: HttpRequest, ref: str) -> HttpResponse:
    found = find_job(ref)
    if found is None:
        return no_job(ref)
    can_send = may_send(request.user, found.connection)
    if not (can_send or may_read(request.user, found.connection)):
        raise ConnectionRefused(found.connection, sending=False)
    return JsonResponse(job_detail(found, can_send=can_send))


@json_endpoint("POST", permission=SEND)
def job_action(request: HttpRequest, ref: str, action: str) -> HttpResponse:
    found = find_job(ref)
    if found is None:
        return no_job(ref)
    if not may_send(request.user, found.connection):
        raise ConnectionRefused(found.connection, sending=True)
    data = read_json(request)
    extra = {}
    try:
        if action == "resend":
            state = _valid(ResendForm(data=data))["state"]
            extra["resent"] = actions.resend(found, state)
        else:
            _valid(JobActionForm(data=data))
            ACTIONS[action](found)
    except actions.JobActionError as exc:
        return error_response(409, "conflict", str(exc))
    found.refresh_from_db()
    return JsonResponse({**job_detail(found, can_send=True), **extra})


@json_endpoint("GET", permission=VIEW)
def job_results(request: HttpRequest, ref: str) -> HttpResponse:
    found = find_job(ref)
    if found is None:
        return no_job(ref)
    if not may_read(request.user, found.connection):
        raise ConnectionRefused(found.connection, sending=False)
    query = _valid(JobResultsForm(data=request.GET))
    order, states = query["order"] or "index", query["state"]
    kind = query["format"] or "json"
    if kind in ("csv", "jsonl"):
        lines = (iter_csv if kind == "csv" else iter_jsonl)(found, order, states)
        content_type = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
        response = StreamingHttpResponse(lines, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="job-{found.key}.{kind}"'
        response["Cache-Control"] = "no-store"
        return response
    page, size = query["page"] or 1, query["page_size"] or RESULTS_PAGE_SIZE
    rows = found.items.order_by(*ordering(order))
    if states:
        rows = rows.filter(state__in=states)
    page_rows = list(rows.values(*RESULT_FIELDS)[(page - 1) * size : page * size + 1])
    return JsonResponse(
        {
            "job": found.key,
            "total": found.total,
            "order": order,
            "state": states,
            "results": [result_row(row) for row in page_rows[:size]],
            "page": page,
            "page_size": size,
            "has_previous": page > 1,
            "has_next": len(page_rows) > size,
        }
    )

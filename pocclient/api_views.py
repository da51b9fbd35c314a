"""The JSON endpoints behind the console (and any tool with a session): see ``jsonapi``.

``POST /_token_refresh``       token status, refreshed when due (or now, with ``force``)
``GET  /api/token``            token status, as it is
``POST /api/send``             one call -> its response and exchange id
``POST /api/batch``            many calls -> a job, and its progress as NDJSON: a line per
                               finished call, then a summary (``batch``)
``GET  /api/exchanges[/<id>]`` the exchange log, newest first

Sending (and forcing a refresh) takes ``api_client.send_request``; reading the log and the
token takes ``api_client.view_exchange``; a refresh when due takes either. Each takes a
``connection`` (body member or query parameter; absent: ``default``) and the right to send
with it or read it (``api_client.connections``), else 403. The jobs' endpoints are in
``job_views``.
"""

import math

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse

from api_client.connections import may_read
from api_client.exceptions import (
    ApiError,
    ApiTimeoutError,
    LedgerError,
    RetryLaterError,
    TokenError,
)
from api_client.models import Exchange

from .batch import NDJSON, stream_job
from .forms import ExchangeFilterForm, RequestForm, TokenRefreshForm
from .job_views import start_job
from .jsonapi import (
    CONSOLE_PERMISSIONS,
    SEND,
    VIEW,
    BadInput,
    ConnectionRefused,
    connection_client,
    connection_name,
    error_response,
    form_errors,
    json_endpoint,
    json_page,
    read_json,
    readable_rows,
    require,
)
from .payloads import (
    SUMMARY_FIELDS,
    api_error_payload,
    exchange_detail,
    exchange_summary,
    response_payload,
)

PAGE_SIZE = 20


def _valid[F: forms.Form](form: F) -> F:
    if not form.is_valid():
        raise BadInput(form_errors(form))
    return form


@json_endpoint("POST", permission=CONSOLE_PERMISSIONS)
def token_refresh(request: HttpRequest) -> HttpResponse:
    form = _valid(TokenRefreshForm(data=read_json(request)))
    force, name = form.cleaned_data["force"], form.cleaned_data["connection"]
    if force:
        require(request, SEND, subject="A forced token refresh (force: true)")
    sending = force or not may_read(request.user, connection_name(name))
    tokens = connection_client(request, name, sending=sending).tokens
    try:
        status, refreshed = tokens.ensure(force=form.cleaned_data["force"])
    except TokenError as exc:
        payload = {**tokens.status().as_dict(), "refreshed": False, **api_error_payload(exc)}
        return JsonResponse(payload, status=502)
    return JsonResponse({**status.as_dict(), "refreshed": refreshed})


@json_endpoint("GET", permission=VIEW)
def token_status(request: HttpRequest) -> HttpResponse:
    client = connection_client(request, request.GET.get("connection"), sending=False)
    return JsonResponse(client.tokens.status().as_dict())


@json_endpoint("POST", permission=SEND)
def send(request: HttpRequest) -> HttpResponse:
    data = read_json(request)
    client = connection_client(request, data.get("connection"))
    form = _valid(RequestForm(data=data, client=client))
    try:
        response = client.send(form.call)
    except ApiTimeoutError as exc:
        return JsonResponse(api_error_payload(exc), status=504)
    except LedgerError as exc:  # not sent: it could not be put on record first
        return JsonResponse(api_error_payload(exc), status=503, headers={"Retry-After": "1"})
    except RetryLaterError as exc:
        headers = {"Retry-After": str(math.ceil(exc.retry_after))}
        return JsonResponse(api_error_payload(exc), status=503, headers=headers)
    except ApiError as exc:  # no token, no connection, an answer too large to take
        return JsonResponse(api_error_payload(exc), status=502)
    return JsonResponse(response_payload(response, client.tokens.held_secrets()))


@json_endpoint("POST", permission=SEND)
def batch(request: HttpRequest) -> HttpResponse:
    """Make a job of the calls (read as a stream; a bad one keeps nothing: 400), then answer
    with its progress, read from the database: a client that goes away leaves it running."""
    job = start_job(request, default_name="POST /api/batch")
    response = StreamingHttpResponse(stream_job(job), content_type=NDJSON)
    response["X-Job-Key"] = job.key
    response["X-Job-URL"] = reverse("api-job", args=[job.key])
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each line on as it comes
    return response


@json_endpoint("GET", permission=VIEW)
def exchanges(request: HttpRequest) -> HttpResponse:
    filters = _valid(ExchangeFilterForm(data=request.GET)).cleaned_data
    page, size = filters["page"] or 1, filters["page_size"] or PAGE_SIZE
    rows = readable_rows(request, Exchange.objects.only(*SUMMARY_FIELDS), filters["connection"])
    if (kind := filters["kind"] or "api") != "all":
        rows = rows.filter(kind=kind)
    if filters["status"] is not None:
        rows = rows.in_status_class(filters["status"])
    if filters["batch_id"]:
        rows = rows.filter(batch_id=filters["batch_id"])
    return json_page(rows, page, size, lambda found: [exchange_summary(row) for row in found])


@json_endpoint("GET", permission=VIEW)
def exchange(request: HttpRequest, exchange_id: int) -> HttpResponse:
    found = Exchange.objects.filter(pk=exchange_id).first()
    if found is None:
        return error_response(404, "not_found", f"There is no exchange {exchange_id}.")
    if not may_read(request.user, found.connection):
        raise ConnectionRefused(found.connection, sending=False)
    return JsonResponse(exchange_detail(found))


@json_endpoint("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(404, "not_found", f"There is no console endpoint at {request.path}.")

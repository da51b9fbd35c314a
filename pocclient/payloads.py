"""What the JSON endpoints answer: responses, errors and exchanges shaped for the browser.

Nothing shaped here carries a secret. Exchanges are stored redacted by ``api_client``; a live
response is not, so its headers are redacted the same way and every secret we hold (the client
secret, the access and refresh tokens) is scrubbed from its body, in case the API echoes one.
"""

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from api_client.exceptions import ApiError, RetryLaterError
from api_client.messages import ApiResponse
from api_client.models import Exchange
from api_client.redaction import redact_headers, redact_json, scrub
from api_client.replay import replay_request
from jobs.models import Item, Job
from jobs.progress import describe


def admin_url(exchange_id: int | None) -> str | None:
    if exchange_id is None:
        return None
    return reverse("admin:api_client_exchange_change", args=[exchange_id])


def decode_body(text: str) -> tuple[Any, bool]:
    """``(value, is_json)``: the body decoded when it is JSON, else the text (None if empty)."""
    if not text:
        return None, False
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return text, False


def response_payload(response: ApiResponse, secrets: tuple[str, ...]) -> dict[str, Any]:
    body, is_json = decode_body(response.text)
    if is_json:
        body = redact_json(body, secrets)
    elif body is not None:
        body = scrub(body, secrets)
    warning = response.note or None
    if response.exchange_id is None:
        # api_client never lets a failure to record hide the API's answer; say it here.
        warning = (
            "The call was made, but it could not be recorded in the exchange log (see the "
            "server log); it will not appear in the history."
        )
    return {
        "id": response.exchange_id,
        "status": response.status,
        "ok": response.ok,
        "method": response.method,
        "url": scrub(response.url, secrets),
        "path": scrub(response.path, secrets),
        "duration_ms": round(response.duration_ms, 1),
        "attempts": response.attempts,
        "request_id": response.request_id,
        "headers": redact_headers(response.headers, secrets),
        "content_type": response.content_type,
        "size": len(response.content),
        "body": body,
        "body_is_json": is_json,
        "admin_url": admin_url(response.exchange_id),
        "warning": warning,
    }


def api_error_payload(error: ApiError) -> dict[str, Any]:
    payload = {
        "error": {"code": error.code, "message": error.message},
        "id": error.exchange_id,
        "admin_url": admin_url(error.exchange_id),
    }
    if isinstance(error, RetryLaterError):
        payload["retry_after"] = error.retry_after
    return payload


# Fields the history list needs; the bodies (up to LOG_BODY_LIMIT each) stay in the database.
SUMMARY_FIELDS = (
    "id",
    "created_at",
    "kind",
    "connection",
    "method",
    "path",
    "status",
    "state",
    "settle_by",
    "duration_ms",
    "attempts",
    "error",
    "error_code",
    "batch_id",
    "request_id",
    "actor",
)


def exchange_summary(exchange: Exchange) -> dict[str, Any]:
    return {
        "id": exchange.pk,
        "created_at": exchange.created_at.isoformat(),
        "kind": exchange.kind,
        "connection": exchange.connection,
        "method": exchange.method,
        "path": exchange.path,
        "status": exchange.status,
        "state": str(exchange.shown_state),
        "ok": exchange.ok,
        "duration_ms": round(exchange.duration_ms, 1),
        "attempts": exchange.attempts,
        "error": {"code": exchange.error_code, "message": exchange.error}
        if exchange.error or exchange.error_code
        else None,
        "batch_id": exchange.batch_id,
        "request_id": exchange.request_id,
        "actor": exchange.actor,
        "admin_url": admin_url(exchange.pk),
    }


def exchange_detail(exchange: Exchange) -> dict[str, Any]:
    return {
        **exchange_summary(exchange),
        "url": exchange.url,
        "thread": exchange.thread,
        "request_headers": exchange.request_headers,
        "request_body": exchange.request_body,
        "response_headers": exchange.response_headers,
        "response_body": exchange.response_body,
        "response_truncated": exchange.response_truncated,
        "replay": replay_payload(exchange) if exchange.kind == Exchange.Kind.API else None,
    }


def replay_payload(exchange: Exchange) -> dict[str, Any]:
    """The request to load into the builder, in ``POST /api/send``'s shape, plus warnings."""
    replay = replay_request(exchange)
    return {**asdict(replay.request), "warnings": replay.warnings}


# --- jobs --------------------------------------------------------------------------------------


def job_urls(job: Job) -> dict[str, str]:
    """Where to follow a job, read its results, and see its calls in the admin."""
    return {
        "url": reverse("api-job", args=[job.key]),
        "results_url": reverse("api-job-results", args=[job.key]),
        "exchanges_url": reverse("admin:api_client_exchange_changelist")
        + "?"
        + urlencode({"batch_id": job.key}),
    }


def job_actions(job: Job, counts: dict[str, int]) -> list[str]:
    """What can be done to the job as it is (``jobs.actions`` says why not, if asked)."""
    found = []
    if job.state == Job.State.RUNNING:
        found.append("pause")
    if job.state == Job.State.PAUSED:
        found.append("resume")
    if job.state in (Job.State.RUNNING, Job.State.PAUSED):
        found.append("cancel")
    if job.state != Job.State.PLANNING:
        found += [f"resend_{state}" for state in ("failed", "unknown") if counts.get(state)]
    return found


def job_detail(job: Job, *, can_send: bool) -> dict[str, Any]:
    """``jobs.progress.describe``, where to go next, and what the user may do to it now."""
    progress = describe(job)
    actions = job_actions(job, progress["counts"]) if can_send else []
    return {**progress, **job_urls(job), "actions": actions}


def job_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A row of the job list (``jobs.progress.summaries``), with where to follow it."""
    return {**summary, "url": reverse("api-job", args=[summary["key"]])}


def result_row(values: dict[str, Any]) -> dict[str, Any]:
    """One item of a job's results page: ``jobs.progress.result_of``'s fields, and a link to
    its exchange in the admin."""
    duration, finished = values["duration_ms"], values["finished_at"]
    return {
        **values,
        "duration_ms": round(duration, 1) if duration is not None else None,
        "finished_at": finished.isoformat() if finished else None,
        "ok": values["state"] == Item.State.ANSWERED and (values["status"] or 0) < 400,
        "exchange_url": admin_url(values["exchange_id"]),
    }

"""The console page, logout, and the CSRF failure view shared with the JSON endpoints."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.http import require_safe

from api_client import connections
from api_client.client import get_client
from api_client.connections import UnknownConnectionError
from api_client.models.connections import DEFAULT
from api_client.validation import BODYLESS_METHODS, MAX_HEADERS, METHODS

from .jsonapi import (
    CONSOLE_GROUP,
    SEND,
    VIEW,
    error_response,
    is_json_endpoint,
    needs_sentence,
    permission_name,
)

# What each of the console's permissions gives, as the pages say it.
ALLOWS = {
    VIEW: "read the history, the recorded exchanges, jobs' results and the token's state",
    SEND: "send requests and batches, pause, cancel and re-send jobs, and refresh the token now",
}


@require_safe
@login_required
def console(request: HttpRequest) -> HttpResponse:
    """The console; read-only without ``send_request``, without history (or jobs' results)
    without ``view_exchange``, and a 403 page that says what is missing without either.
    ``?job=<key>`` opens that job's progress (the page puts it there when a batch starts)."""
    can_send, can_view = request.user.has_perm(SEND), request.user.has_perm(VIEW)
    if not (can_send or can_view):
        missing = [(p, permission_name(p), ALLOWS[p]) for p in (VIEW, SEND)]
        context = {"missing": missing, "group": CONSOLE_GROUP}
        return render(request, "pocclient/no_permission.html", context, status=403)
    offered = connections.offered(request.user)
    if not offered:  # the permissions, but no connection's groups
        context = {"missing": [], "group": CONSOLE_GROUP, "no_connection": True}
        return render(request, "pocclient/no_permission.html", context, status=403)
    chosen = next((c for c in offered if c["can_send"]), offered[0])
    try:
        client = get_client(chosen["name"])
    except UnknownConnectionError:  # broken since it was listed: offer the others' first
        usable = [c for c in offered if c["name"] == DEFAULT]
        if not usable:
            raise
        client, chosen = get_client(), usable[0]
    name = chosen["name"]
    notes = {
        "send": ""
        if can_send
        else needs_sentence((SEND,), subject="Sending requests, batches and a refresh by hand"),
        "view": "" if can_view else needs_sentence((VIEW,), subject="The history"),
        "results": "" if can_view else needs_sentence((VIEW,), subject="A job's results"),
    }
    page = {
        "base_url": client.config.base_url,
        "methods": METHODS,
        "bodyless_methods": sorted(BODYLESS_METHODS),
        "max_workers": client.config.MAX_WORKERS,
        "batch_max": client.config.BATCH_MAX,
        "max_headers": MAX_HEADERS,
        "token": client.tokens.status().as_dict(),
        "connections": offered,
        "connection": name,
        "permissions": {"send_request": can_send, "view_exchange": can_view},
        "urls": {
            "token_refresh": reverse("token-refresh"),
            "token": reverse("api-token"),
            "send": reverse("api-send"),
            "batch": reverse("api-batch"),
            "jobs": reverse("api-jobs"),
            "exchanges": reverse("api-exchanges"),
            "login": reverse("login"),
            "exchange_admin": reverse("admin:api_client_exchange_change", args=[0]).replace(
                "/0/", "/{id}/"
            ),
        },
    }
    return render(request, "pocclient/console.html", {"page": page, "notes": notes})


class LogoutView(auth_views.LogoutView):
    """Django's logout, which then says so on the login page it redirects to."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out.")
        return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: JSON for the JSON endpoints, Django's page for everything else."""
    if is_json_endpoint(request):
        return error_response(
            403,
            "csrf_failed",
            f"CSRF verification failed: {reason.rstrip('.')}. Send the X-CSRFToken header "
            "with the value of the csrftoken cookie, from a page of this site.",
        )
    return html_csrf_failure(request, reason)

"""The project's URLs, and ``POST /bench/bare-send``: the least a Django view can do to make the
same outbound call as ``POST /api/send``, for bench/web_load.py to compare with.

It takes the same login and CSRF check and the same JSON body, calls the same URL under the
base URL with a bearer token over one pooled urllib3 connection per thread's pool, and
answers the status and body as JSON. It does not validate, redact, retry or record anything:
what ``/api/send`` costs beyond it is what pocclient does.
"""

import json
import threading
from urllib.parse import urlencode

import urllib3
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST

from api_client.conf import api_settings
from pocclient.urls import urlpatterns as project_urlpatterns

_pool = urllib3.PoolManager(maxsize=32)
_token: dict[str, str] = {}
_lock = threading.Lock()


def _bearer(stale: str = "") -> str:
    with _lock:  # one grant for every thread that found the token missing or refused
        if _token.get("value", "") == stale:
            config = api_settings()
            answer = _pool.request(
                "POST",
                config.TOKEN_URL,
                body=urlencode({"grant_type": "client_credentials"}),
                headers={
                    **urllib3.make_headers(basic_auth=f"{config.CLIENT_ID}:{config.CLIENT_SECRET}"),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            _token["value"] = json.loads(answer.data)["access_token"]
        return _token["value"]


@require_POST
@login_required
def bare_send(request: HttpRequest) -> JsonResponse:
    call = json.loads(request.body)
    url = api_settings().base_url + call["path"]
    if call.get("query"):
        url += "?" + urlencode(call["query"])
    token = _bearer()
    answer = _pool.request(call["method"], url, headers={"Authorization": f"Bearer {token}"})
    if answer.status == 401:
        answer = _pool.request(
            call["method"], url, headers={"Authorization": f"Bearer {_bearer(token)}"}
        )
    return JsonResponse({"status": answer.status, "body": json.loads(answer.data or b"null")})


urlpatterns = [path("bench/bare-send", bare_send), *project_urlpatterns]

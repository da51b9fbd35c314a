"""The project's URLs plus views that call the API, for request-id tests."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from api_client.client import get_client
from pocclient.urls import urlpatterns as project_urlpatterns


def call_api(request: HttpRequest) -> JsonResponse:
    one = get_client().get("echo")
    many = get_client().request_many([{"path": "whoami"}, {"path": "echo"}], concurrency=2)
    return JsonResponse(
        {
            "request_id": request.request_id,
            "echoed": one.json()["headers"].get("X-Request-Id"),
            "exchanges": [one.exchange_id, *(r.exchange_id for r in many)],
        }
    )


def fail(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("boom")


urlpatterns = [
    path("test/call-api", call_api),
    path("test/fail", fail),
    *project_urlpatterns,
]

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from pocclient import api_views, job_views, views

JOB = r"^api/jobs/(?P<ref>[0-9]{1,19}|[0-9a-f]{32})"

urlpatterns = [
    path("", views.console, name="console"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("_token_refresh", api_views.token_refresh, name="token-refresh"),
    path("api/token", api_views.token_status, name="api-token"),
    path("api/send", api_views.send, name="api-send"),
    path("api/batch", api_views.batch, name="api-batch"),
    path("api/exchanges", api_views.exchanges, name="api-exchanges"),
    path("api/exchanges/<int:exchange_id>", api_views.exchange, name="api-exchange"),
    path("api/jobs", job_views.jobs, name="api-jobs"),
    re_path(rf"{JOB}$", job_views.job, name="api-job"),
    re_path(rf"{JOB}/results$", job_views.job_results, name="api-job-results"),
    re_path(
        rf"{JOB}/(?P<action>pause|resume|cancel|resend)$",
        job_views.job_action,
        name="api-job-action",
    ),
    # Anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^api/(?P<rest>.*)$", api_views.not_found),
    path("admin/", admin.site.urls),
]

if settings.POC_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

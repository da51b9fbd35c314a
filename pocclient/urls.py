from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from pocclient import api_views, views

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
    # Anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^api/(?P<rest>.*)$", api_views.not_found),
    path("admin/", admin.site.urls),
]

if settings.POC_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

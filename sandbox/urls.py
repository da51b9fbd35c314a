from django.urls import path, re_path

from sandbox import items, oauth, views

app_name = "sandbox"

urlpatterns = [
    path("oauth/token", oauth.token, name="token"),
    path("api/whoami", views.whoami, name="whoami"),
    path("api/echo", views.echo, name="echo"),
    path("api/echo/<path:rest>", views.echo, name="echo-path"),
    path("api/items", items.items, name="items"),
    path("api/items/<int:item_id>", items.item, name="item"),
    path("stats", views.stats_view, name="stats"),
    path("stats/reset", views.stats_reset, name="stats-reset"),
    # Last: anything else under /sandbox/ is a JSON 404, never Django's HTML page. Matching
    # everything also keeps APPEND_SLASH from redirecting "api/items/" to a sandbox view.
    re_path(r"", views.no_endpoint, name="no-endpoint"),
]

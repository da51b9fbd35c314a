"""Mounts the sandbox for its own tests, whatever POC_SANDBOX says."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("sandbox/", include("sandbox.urls")),
]

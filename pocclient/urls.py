from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]

if settings.POC_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

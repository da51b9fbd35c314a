from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_started

        from . import checks  # noqa: F401 (registers the checks)
        from .workers import start_embedded_worker

        # The web process runs jobs too, unless told not to: the first request starts it.
        request_started.connect(start_embedded_worker, dispatch_uid="jobs.embedded")

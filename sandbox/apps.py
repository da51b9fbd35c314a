from django.apps import AppConfig
from django.core import checks


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandbox API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sandbox.checks import check_settings

        checks.register(check_settings)

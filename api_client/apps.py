from django.apps import AppConfig


class ApiClientConfig(AppConfig):
    name = "api_client"
    verbose_name = "API client"

    def ready(self) -> None:
        from . import checks, conf  # noqa: F401 (registers checks and the settings receiver)

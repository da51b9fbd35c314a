from django.apps import AppConfig


class ApiClientConfig(AppConfig):
    name = "api_client"
    verbose_name = "API client"

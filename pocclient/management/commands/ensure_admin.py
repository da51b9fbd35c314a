import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser

from api_client.management.base import ApiCommand


class Command(ApiCommand):
    help = (
        "Create a local admin login with a random password, printed once, if no user exists "
        "yet. Used by `make run`; does nothing once any user exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="Default: %(default)s.")

    def handle(self, *, username: str, **options: Any) -> None:
        User = get_user_model()
        if User.objects.exists():
            self.stdout.write("A user exists already; no admin login created.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the admin login {username!r} with password {password!r}. It is shown "
                "only this once: note it, or change it later with "
                f"`manage.py changepassword {username}`."
            )
        )

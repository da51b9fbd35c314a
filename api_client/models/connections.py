"""The connections: one API with its credentials, limits and bounds, and who may use it.

The environment's ``POC_API_*`` settings are the connection ``default``; its row holds only
what the environment does not (colour, protection, groups) and the admin shows the rest read
only. Every other connection is a row here, with every setting of ``ApiSettings``: a blank one
takes pocclient's built-in default (the README's table), not the environment's, so that a
connection is the same on every host. Exchanges, tokens and jobs name their connection (a
name, not a foreign key: the log outlives a connection, which is switched off, not deleted).
"""

import re

from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models

from ..encryption import EncryptedTextField

DEFAULT = "default"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NAME_RULE = "1 to 64 lower-case letters, digits, _ and - (starting with a letter or digit)"


def is_name(value: object) -> bool:
    """Whether ``value`` can name a connection (``NAME_RULE``)."""
    return isinstance(value, str) and re.fullmatch(NAME_PATTERN, value) is not None


def scoped(identity: str, connection: str) -> str:
    """``identity`` (of a token's credential, of a rate limit's API) made the connection's
    own, so two connections never share a token or a limit; ``default``'s stays as it was
    before connections existed, so its stored tokens and limits keep their keys."""
    return identity if connection == DEFAULT else f"{identity}\nconnection={connection}"


# Model field -> ApiSettings field, for the settings a connection may set (blank: built in).
TUNABLES = {
    "connect_timeout": "CONNECT_TIMEOUT",
    "read_timeout": "READ_TIMEOUT",
    "deadline": "DEADLINE",
    "retries": "RETRIES",
    "backoff_factor": "BACKOFF_FACTOR",
    "retry_after_max": "RETRY_AFTER_MAX",
    "max_workers": "MAX_WORKERS",
    "batch_max": "BATCH_MAX",
    "token_leeway": "TOKEN_LEEWAY",
    "default_token_lifetime": "DEFAULT_TOKEN_LIFETIME",
    "max_request_bytes": "MAX_REQUEST_BYTES",
    "max_response_bytes": "MAX_RESPONSE_BYTES",
    "log_body_limit": "LOG_BODY_LIMIT",
}


class UndecryptableSecret(str):
    """What a client secret no configured key decrypts reads as: empty, and recognisable, so
    that using the connection is a clear error rather than a grant with no secret."""

    __slots__ = ()


class StrictEncryptedTextField(EncryptedTextField):
    when_undecryptable = (
        "the connection cannot be used until the old key is added or the secret is set again"
    )

    def from_db_value(self, value, expression, connection):
        plain = super().from_db_value(value, expression, connection)
        return UndecryptableSecret() if value and not plain else plain


class Connection(models.Model):
    class ClientAuth(models.TextChoices):
        BASIC = "basic", "HTTP Basic"
        BODY = "body", "form fields"

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, f"A connection name has {NAME_RULE}.")],
        help_text=f"How commands (--connection) and Python (get_client) name it: {NAME_RULE}.",
    )
    enabled = models.BooleanField(
        default=True, help_text="A switched-off connection sends nothing; its log stays."
    )
    colour = models.CharField(
        max_length=7,
        blank=True,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour is #rrggbb, e.g. #b00020.")],
        help_text="Shown in the console beside every button that sends (e.g. #b00020 for "
        "production).",
    )
    protected = models.BooleanField(
        default=False, help_text="The console asks for confirmation before a batch on it."
    )
    base_url = models.URLField("base URL", max_length=2048, blank=True)
    token_url = models.URLField("token URL", max_length=2048, blank=True)
    client_id = models.CharField(max_length=255, blank=True)
    client_secret = StrictEncryptedTextField(blank=True)
    scope = models.CharField(max_length=1000, blank=True)
    client_auth = models.CharField(max_length=5, choices=ClientAuth, default=ClientAuth.BASIC)
    rate_limit = models.CharField(
        max_length=1000, blank=True, help_text='Rules such as "40/s, POST items=15/min".'
    )
    connect_timeout = models.FloatField(null=True, blank=True)
    read_timeout = models.FloatField(null=True, blank=True)
    deadline = models.FloatField(null=True, blank=True)
    retries = models.PositiveSmallIntegerField(null=True, blank=True)
    backoff_factor = models.FloatField(null=True, blank=True)
    retry_after_max = models.PositiveIntegerField(null=True, blank=True)
    max_workers = models.PositiveSmallIntegerField(null=True, blank=True)
    batch_max = models.PositiveIntegerField(null=True, blank=True)
    token_leeway = models.PositiveIntegerField(null=True, blank=True)
    default_token_lifetime = models.PositiveIntegerField(null=True, blank=True)
    max_request_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_response_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    log_body_limit = models.PositiveIntegerField(null=True, blank=True)
    send_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        help_text="Who may send with it (superusers always may). None: nobody else, except "
        "on default, which then keeps the send_request permission's rule.",
    )
    read_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        help_text="Who may read its exchanges and jobs (superusers always may). None: as for "
        "sending.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

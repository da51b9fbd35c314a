"""Secrets at rest: the tokens pocclient stores, encrypted under ``POC_ENCRYPTION_KEY``.

Fernet (``cryptography``) is authenticated encryption (AES-128-CBC with HMAC-SHA256): a value
changed in the database, or encrypted under another key, fails to decrypt instead of decrypting
to garbage. ``MultiFernet`` holds the keys newest first; it encrypts under the first and
decrypts under any of them, which is what rotation needs: put the new key first, run
``manage.py rotate_encryption_key``, then drop the old key.

Keys come from ``settings.POC_ENCRYPTION_KEYS`` (``POC_ENCRYPTION_KEY``, comma-separated).
With none set and ``DEBUG`` on, a development key is derived from ``SECRET_KEY``: deterministic,
so the next run reads this run's tokens (a changed ``DJANGO_SECRET_KEY`` makes them unreadable,
which costs one new grant). With ``DEBUG`` off there is no such fallback: the system checks
report a missing key (``api_client.E003``) or a bad one (``E004``), and ``check --deploy``
warns about the development key (``W002``).

Why a model field rather than encrypting in the token manager: every way a value reaches the
column (``save``, ``create``, ``get_or_create``, ``QuerySet.update``, which ``api_client.tokens``
uses for its conditional writes) goes through ``get_db_prep_save``, and every read through
``from_db_value``, so no path can forget to encrypt, and code and tests keep reading and
writing plain ``access_token``/``refresh_token``. The price: a lookup on the value never
matches (each encryption differs), except ``""``, which is stored as it is (no secret to hide).
A stored value that cannot be decrypted reads as ``""``, i.e. as no token, which the token
manager replaces with a new grant; a warning is logged, without the value.
"""

import base64
import hashlib
import logging
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression, ExpressionWrapper, F
from django.dispatch import receiver
from django.utils.crypto import salted_hmac

logger = logging.getLogger(__name__)

VARIABLE = "POC_ENCRYPTION_KEY"
GENERATE = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
NO_KEY = (
    f"{VARIABLE} is not set and DJANGO_DEBUG is off: pocclient stores the API's access and "
    "refresh tokens encrypted under it, and has no key to do so."
)
NO_KEY_HINT = (
    f"Generate a key with `{GENERATE}`, set {VARIABLE} to it (keep a copy: the stored tokens "
    "cannot be read without it) and restart."
)
_DEVELOPMENT_SALT = "api_client.encryption.development-key"


class DecryptionError(Exception):
    """A stored secret that no configured key decrypts (a wrong key, or corrupted data).

    Its message never includes the value.
    """


def configured_keys() -> list[str]:
    return [key for key in getattr(settings, "POC_ENCRYPTION_KEYS", ()) if key]


def uses_development_key() -> bool:
    return not configured_keys() and settings.DEBUG


def development_key() -> str:
    """The key used while DEBUG is on and no key is set: derived from SECRET_KEY."""
    digest = salted_hmac(_DEVELOPMENT_SALT, "", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode()


def key_problems(keys: list[str]) -> list[str]:
    """What is wrong with ``keys``, one sentence per bad key, never quoting a key."""
    found = []
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, UnicodeError):
            where = f"its key {number} of {len(keys)}" if len(keys) > 1 else "its key"
            found.append(
                f"{VARIABLE} is not usable: {where} is not a Fernet key (32 url-safe "
                f"base64-encoded bytes, 44 characters); it has {len(key)} characters."
            )
    return found


@cache
def fernet() -> MultiFernet:
    """The keys, newest first, built once (and again when the settings change)."""
    keys = configured_keys()
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured(f"{NO_KEY} {NO_KEY_HINT}")
        keys = [development_key()]
    if problems := key_problems(keys):
        raise ImproperlyConfigured(problems[0])
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """The plaintext of ``ciphertext``; ``DecryptionError`` if no configured key opens it."""
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            f"A stored secret could not be decrypted with any key of {VARIABLE}."
        ) from None


def rotate(ciphertext: str) -> str:
    """``ciphertext`` encrypted anew under the newest key; ``DecryptionError`` as ``decrypt``."""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            f"A stored secret could not be decrypted with any key of {VARIABLE}."
        ) from None


def stored(field_name: str) -> Expression:
    """The column ``field_name`` as stored (the ciphertext), for ``values_list``/``annotate``:
    an expression whose output field does not decrypt."""
    return ExpressionWrapper(F(field_name), output_field=models.TextField())


_reported: set[str] = set()  # digests of undecryptable values already warned about


def _warn_undecryptable(field: models.Field, ciphertext: str) -> None:
    """Warn once per value and process (the console polls the token's state), never quoting it."""
    digest = hashlib.sha256(ciphertext.encode()).hexdigest()
    if digest in _reported:
        return
    if len(_reported) > 1000:
        _reported.clear()
    _reported.add(digest)
    logger.warning(
        "A stored %s (%s) could not be decrypted with any key of %s (a wrong key, or "
        "corrupted data); %s.",
        field.verbose_name,
        field.model._meta.label if hasattr(field, "model") else "?",
        VARIABLE,
        getattr(field, "when_undecryptable", "it is treated as missing and will be obtained anew"),
    )


class EncryptedTextField(models.TextField):
    """A text column holding Fernet ciphertext; Python sees the plaintext.

    ``""`` is stored as ``""``. A value that does not decrypt reads as ``""`` (see the module
    docstring). Filtering on the value does not work: encryption is not deterministic.
    """

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if not value:
            return value
        try:
            return decrypt(value)
        except DecryptionError:
            _warn_undecryptable(self, value)
            return ""

    def get_db_prep_save(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        if hasattr(value, "as_sql"):  # an expression: it says what it stores
            return value
        value = super().get_db_prep_save(value, connection)
        return encrypt(value) if value else value


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("POC_ENCRYPTION_KEYS", "SECRET_KEY", "DEBUG"):
        fernet.cache_clear()

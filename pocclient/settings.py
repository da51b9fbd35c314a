"""Settings for pocclient, read from the environment.

Only this module reads ``os.environ``. Every variable is optional: the defaults run the app
against the built-in sandbox on SQLite. A bad value raises ``ImproperlyConfigured`` naming the
variable, so a typo fails at start-up rather than on the first API call.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}."
    )


type Parser = Callable[[str, str], Any]  # (variable name, raw value) -> value


def _number[T: (int, float)](kind: type[T], minimum: T) -> Parser:
    def parse(name: str, raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be {'an integer' if kind is int else 'a number'}; got {raw!r}."
            ) from None
        if not value >= minimum:  # also refuses nan
            raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {raw!r}.")
        return value

    return parse


def integer(*, minimum: int = 0) -> Parser:
    return _number(int, minimum)


def decimal(*, minimum: float = 0.0) -> Parser:
    return _number(float, minimum)


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    return integer(minimum=minimum)(name, raw) if raw else default


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    return decimal(minimum=minimum)(name, raw) if raw else default


def env_settings(**keys: tuple[str, Parser | type[str]]) -> dict[str, Any]:
    """``{KEY: value}`` for each ``KEY=(VARIABLE, parse)`` whose variable is set. The app that
    reads the dict holds the defaults, so each default is written in one place."""
    found = {}
    for key, (name, parse) in keys.items():
        raw = os.environ.get(name)
        if raw is None:
            continue
        if parse is str:
            found[key] = raw
        elif raw.strip():
            found[key] = parse(name, raw.strip())
    return found


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, matched without regard to case (empty or unset: ``default``)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    for choice in choices:
        if raw.upper() == choice.upper():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {raw!r}.")


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` and set it in "
            "the environment."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 (debug only)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "api_client",
    "jobs",  # before django_tasks_db: its db_worker command adds the jobs' upkeep
    "django_tasks_db",
    "sandbox",
    "pocclient",
]

MIDDLEWARE = [
    # First, so that everything after it, and every response, carries the request id.
    "api_client.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "api_client.middleware.ActorMiddleware",  # the user is who caused the calls
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Production serves its own static files; runserver and the test server already do.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "pocclient.urls"
WSGI_APPLICATION = "pocclient.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is tuned for a thread pool of concurrent writers (see README, "Threads, connections
# and SQLite"): WAL lets readers run beside the one writer; IMMEDIATE transactions take the
# write lock up front so writers queue on the busy timeout instead of failing with "database
# is locked" when a read transaction tries to upgrade. No mmap_size: with SQLite's WAL-reset
# bug (3.7.0 to 3.51.2) a memory map can turn a rare race into lasting corruption.
SQLITE_BUSY_TIMEOUT = env_float("POC_SQLITE_BUSY_TIMEOUT", 20.0, minimum=0.1)
SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "cache_size": "-20000",  # KiB, negative means size rather than pages: 20 MB
    "journal_size_limit": "67108864",  # 64 MiB: WAL truncated back after checkpoints
    "temp_store": "MEMORY",
    "foreign_keys": "ON",
}

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60))
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a supported database URL: {exc}") from None
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": SQLITE_BUSY_TIMEOUT,
    "init_command": ";".join(f"PRAGMA {k}={v}" for k, v in SQLITE_PRAGMAS.items()),
}
# Django's backend, with writers queueing for the write lock (pocclient/db/sqlite3/base.py).
SQLITE_ENGINE = "pocclient.db.sqlite3"
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["ENGINE"] = SQLITE_ENGINE
    _database["OPTIONS"] = SQLITE_OPTIONS
    # The test database is a file, not shared-cache memory: concurrency tests must see the
    # same WAL locking as production. pytest-django suffixes it per xdist worker.
    _database["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL waits for a lock forever by default; like SQLite's busy timeout, give up
    # after a while with a clear error rather than hang a request behind a stuck process.
    _lock_timeout_ms = round(env_float("POC_PG_LOCK_TIMEOUT", 20.0, minimum=0.1) * 1000)
    _options = _database.setdefault("OPTIONS", {})
    _options["options"] = (
        f"{_options.get('options', '')} -c lock_timeout={_lock_timeout_ms}".strip()
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "pocclient.storage.StaticFilesStorage"
        )
    },
}

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Error pages (debug on) hide secrets by name and by value, in frames and settings alike.
DEFAULT_EXCEPTION_REPORTER_FILTER = "api_client.reporting.SecretsFilter"
# JSON endpoints answer a CSRF failure with JSON, pages with Django's HTML page.
CSRF_FAILURE_VIEW = "pocclient.views.csrf_failure"
# Needed behind a proxy whose public origin differs from the Host Django sees, e.g.
# "https://console.example.com".
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
# Every asset is served from this origin and no page has inline script or style: the console's
# JavaScript and CSS are static files, and its initial data is a JSON data block.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- The external API --------------------------------------------------------------------------
# api_client reads only this dict; api_client.conf holds every key's default (the sandbox on
# 127.0.0.1:8000 and its dev credentials), so only variables that are set land here.
POC_API = env_settings(
    BASE_URL=("POC_API_BASE_URL", str),
    TOKEN_URL=("POC_API_TOKEN_URL", str),
    CLIENT_ID=("POC_API_CLIENT_ID", str),
    CLIENT_SECRET=("POC_API_CLIENT_SECRET", str),
    SCOPE=("POC_API_SCOPE", str),
    CLIENT_AUTH=("POC_API_CLIENT_AUTH", str),
    CONNECT_TIMEOUT=("POC_API_CONNECT_TIMEOUT", decimal(minimum=0.01)),
    READ_TIMEOUT=("POC_API_READ_TIMEOUT", decimal(minimum=0.01)),
    MAX_WORKERS=("POC_API_MAX_WORKERS", integer(minimum=1)),
    BATCH_MAX=("POC_API_BATCH_MAX", integer(minimum=1)),
    RETRIES=("POC_API_RETRIES", integer()),
    BACKOFF_FACTOR=("POC_API_BACKOFF_FACTOR", decimal()),
    RETRY_AFTER_MAX=("POC_API_RETRY_AFTER_MAX", integer()),
    TOKEN_LEEWAY=("POC_API_TOKEN_LEEWAY", integer()),
    DEFAULT_TOKEN_LIFETIME=("POC_API_DEFAULT_TOKEN_LIFETIME", integer(minimum=1)),
    MAX_REQUEST_BYTES=("POC_API_MAX_REQUEST_BYTES", integer(minimum=1)),
    MAX_RESPONSE_BYTES=("POC_API_MAX_RESPONSE_BYTES", integer(minimum=1)),
    DEADLINE=("POC_API_DEADLINE", decimal(minimum=0.1)),
    RATE_LIMIT=("POC_API_RATE_LIMIT", str),
    LOG_BODY_LIMIT=("POC_API_LOG_BODY_LIMIT", integer()),
    EXCHANGE_RETENTION_DAYS=("POC_EXCHANGE_RETENTION_DAYS", integer()),
)

# --- Secrets at rest (api_client.encryption) ---------------------------------------------------
# Fernet keys for the stored tokens, newest first: `key` or `new,old` while rotating. Unset, the
# app derives a development key from SECRET_KEY while DEBUG is on and refuses to run otherwise
# (system checks api_client.E003, E004; W002 under `check --deploy`).
POC_ENCRYPTION_KEYS = env_list("POC_ENCRYPTION_KEY", "")

# --- Background jobs (the jobs app) on Django's Tasks framework ---------------------------------
# The database is the queue (django-tasks-db): nothing else has to run. Workers are
# `manage.py db_worker` and, unless POC_EMBEDDED_WORKER=0 (production's default), a worker in
# the web process itself. Past one machine, point TASKS at PostgreSQL's database (the same
# backend) with workers on several hosts; another backend needs only this setting.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
POC_EMBEDDED_WORKER = env_bool("POC_EMBEDDED_WORKER", DEBUG)
POC_JOBS = env_settings(  # jobs.conf holds the defaults
    LEASE_SLACK=("POC_JOBS_LEASE_SLACK", decimal(minimum=1)),
    BEAT=("POC_JOBS_BEAT", decimal(minimum=0.1)),
)

# --- The sandbox (a local stand-in for the external API) --------------------------------------
# sandbox.conf holds the defaults: one demo client, the pair the POC_API defaults use.
POC_SANDBOX = env_bool("POC_SANDBOX", DEBUG)
SANDBOX = env_settings(
    CLIENT_ID=("POC_SANDBOX_CLIENT_ID", str),
    CLIENT_SECRET=("POC_SANDBOX_CLIENT_SECRET", str),
    TOKEN_LIFETIME=("POC_SANDBOX_TOKEN_LIFETIME", integer(minimum=1)),
)

# --- Logging: the original proof of concept's format, thread ids included ---------------------
# plus the request id of the page or command that caused the line ("-" outside of one).
LOG_LEVEL = env_choice(
    "DJANGO_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "api_client.log.RequestIdFilter"},
    },
    "formatters": {
        "poc": {
            "format": "%(asctime)s %(thread)d %(levelname)s %(name)s %(funcName)s %(lineno)d "
            "%(request_id)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "poc",
            "filters": ["request_id"],
        },
        # Lines are formatted and written by a thread of their own (api_client.log).
        "queue": {
            "class": "api_client.log.OffThreadHandler",
            "handlers": ["console"],
            "listener": "api_client.log.WritingListener",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["queue"], "level": LOG_LEVEL},
    "loggers": {
        # Django's defaults give "django" and "django.server" handlers of their own, whose
        # lines would lack the format above: send theirs through the root handler instead.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
    },
}

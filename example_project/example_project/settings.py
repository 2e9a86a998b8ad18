"""Settings of the django_mmc example project.

Everything comes from environment variables, with defaults that need no
server at all: a SQLite file, Celery's filesystem broker and a file cache,
all under ``example_project/.demo/`` (``DEMO_DATA_DIR`` moves them), and the
MMC sandbox's fake credentials. Point the variables at real services for
anything more than a demo:

==========================  ==================================================
``DATABASE_URL``            ``postgres://user:password@host:5432/name`` (needs
                            ``psycopg``) or ``sqlite:///path/to/db.sqlite3``
``CELERY_BROKER_URL``       ``redis://127.0.0.1:6379/0``, ``amqp://...``
                            (default ``filesystem://``)
``REDIS_CACHE_URL``         ``redis://127.0.0.1:6379/1`` (default: file cache)
``MMC_BASE_URL``            the platform (default: the sandbox on port 8765)
``MMC_OAUTH_BASE_URL``      default ``{MMC_BASE_URL}/oauth2/v2.0``
``MMC_OAUTH_FLOW``          default: django_mmc's default flow
``MMC_CLIENT_ID``,          the organisation's service account
``MMC_CLIENT_SECRET``
``MMC_ORGANISATION_ID``
``MMC_SUPPORT_AGENT_ID``,   the "support" dialogue agent: its platform id and
``MMC_SUPPORT_SECRETS``     webhook secret(s), comma-separated for rotation
``MMC_SALES_AGENT_ID``,     the "sales" dialogue agent
``MMC_SALES_SECRETS``
``MMC_DEFAULT_CHANNEL_GROUP``  default ``7``
==========================  ==================================================

The cache and the broker are shared by the web server and the Celery worker
(separate processes): that is why the defaults are files, not local memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DEMO_DATA_DIR") or BASE_DIR / ".demo")
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip() or default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in ("1", "true", "yes", "on")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# -- Django ---------------------------------------------------------------------

SECRET_KEY = env("DJANGO_SECRET_KEY", "django-mmc-example-not-a-secret-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_mmc",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

LANGUAGE_CODE = env("DJANGO_LANGUAGE_CODE", "en")
TIME_ZONE = env("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# -- the database ------------------------------------------------------------------


def database_from_url(url: str) -> dict:
    """A ``DATABASES`` entry from ``postgres://user:pass@host:port/name?opt=v``
    or ``sqlite:///relative/or/absolute/path`` (parsed here, so the example
    needs no extra package)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "pgsql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
            "CONN_MAX_AGE": 60,
        }
    if scheme == "sqlite":
        # sqlite:///db.sqlite3 is relative to the project, sqlite:////abs is absolute.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return sqlite_database(Path(path) if Path(path).is_absolute() else BASE_DIR / path)
    raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} "
                     "(use postgres:// or sqlite://)")


def sqlite_database(path: Path) -> dict:
    # The web server, the worker, beat and the demo all write to this file.
    # WAL lets readers and one writer work at once, IMMEDIATE transactions
    # take the write lock up front (no "database is locked" on upgrade), and
    # the timeout makes a writer wait for another instead of failing.
    options = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": options}


DATABASE_URL = env("DATABASE_URL")
DATABASES = {
    "default": database_from_url(DATABASE_URL) if DATABASE_URL
    else sqlite_database(DATA_DIR / "db.sqlite3"),
}


# -- the cache (django_mmc keeps the access token and rate-limit windows here) -----

REDIS_CACHE_URL = env("REDIS_CACHE_URL")
if REDIS_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "cache")}}


# -- Celery ----------------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Kombu's filesystem transport: messages are files in a folder that
    # every process on this machine shares. Fine for a demo, not for
    # production (use Redis or RabbitMQ).
    _broker = DATA_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        # The exchange table (default: "control/" in whatever directory the
        # process started in).
        "control_folder": str(_broker / "control"),
        "store_processed": False,
        "polling_interval": float(env("DEMO_BROKER_POLLING_INTERVAL", "0.5")),
    }
    # Remote control and events need broadcast, which this transport lacks.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CELERY_WORKER_SEND_TASK_EVENTS = False

# django_mmc's sending tasks acknowledge late, so a worker killed mid-task
# loses nothing; one message at a time per worker keeps that cheap.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_DB_REUSE_MAX = 1000  # workers keep their database connection between tasks
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE


# -- django_mmc ---------------------------------------------------------------------------

# Defaults: the MMC sandbox (``python -m django_mmc.sandbox``) and its fake
# credentials (django_mmc/sandbox/defaults.py). Real ones come from the
# environment, never from this file.
MMC_BASE_URL = env("MMC_BASE_URL", "http://127.0.0.1:8765").rstrip("/")

MMC = {
    "BASE_URL": MMC_BASE_URL,
    "OAUTH_BASE_URL": env("MMC_OAUTH_BASE_URL", f"{MMC_BASE_URL}/oauth2/v2.0"),
    "CLIENT_ID": env("MMC_CLIENT_ID", "sandbox-client"),
    "CLIENT_SECRET": env("MMC_CLIENT_SECRET", "sandbox-secret"),
    "ORGANISATION_ID": env("MMC_ORGANISATION_ID", "1001"),
    "AGENTS": {
        "support": {"ID": env("MMC_SUPPORT_AGENT_ID", "17"),
                    "WEBHOOK_SECRETS": env_list("MMC_SUPPORT_SECRETS", "agent-17-secret")},
        "sales": {"ID": env("MMC_SALES_AGENT_ID", "18"),
                  "WEBHOOK_SECRETS": env_list("MMC_SALES_SECRETS", "agent-18-secret")},
    },
    "DEFAULT_AGENT": "support",
    "DEFAULT_CHANNEL_GROUP": env("MMC_DEFAULT_CHANNEL_GROUP", "7"),
    "DEFAULT_CHANNEL_TYPE": env("MMC_DEFAULT_CHANNEL_TYPE", "WHATSAPP"),
}
if env("MMC_OAUTH_FLOW"):
    MMC["OAUTH_FLOW"] = env("MMC_OAUTH_FLOW")

#: Show the shop's "make the customer reply" sandbox helpers (never against
#: the real platform).
SHOP_SANDBOX_CONTROLS = env_bool(
    "SHOP_SANDBOX_CONTROLS", urlsplit(MMC_BASE_URL).hostname in ("127.0.0.1", "localhost"))


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django_mmc": {"handlers": ["console"], "level": env("MMC_LOG_LEVEL", "INFO")},
        "shop": {"handlers": ["console"], "level": "INFO"},
    },
}

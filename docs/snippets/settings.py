# yourproject/settings.py: add this at the end (it replaces INSTALLED_APPS and DATABASES)
import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_mmc",
    "shop",  # the app this page creates with `manage.py startapp shop`
]

# SQLite will do for development, set up so that the web server and a Celery
# worker can both write to it (system check django_mmc.W006): WAL, a busy
# timeout and IMMEDIATE transactions. Use PostgreSQL in production.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(__file__).resolve().parent.parent / "db.sqlite3",
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;",
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
        },
    }
}

# The platform: the MMC sandbox on this machine, until MMC_BASE_URL names the
# real one. Against the sandbox the credentials default to its fake ones;
# anywhere else each must come from the environment. Never commit real ones.
MMC_BASE_URL = os.environ.get("MMC_BASE_URL", "http://127.0.0.1:8765").rstrip("/")
USING_SANDBOX = urlsplit(MMC_BASE_URL).hostname in ("127.0.0.1", "localhost")


def mmc_env(name, sandbox_value):
    value = os.environ.get(name)
    if value:
        return value
    if USING_SANDBOX:
        return sandbox_value
    raise ImproperlyConfigured(
        f"Set the environment variable {name}: MMC_BASE_URL is {MMC_BASE_URL}, "
        "not the sandbox, so django_mmc needs your real credentials."
    )


MMC = {
    "BASE_URL": MMC_BASE_URL,
    "OAUTH_BASE_URL": os.environ.get("MMC_OAUTH_BASE_URL", f"{MMC_BASE_URL}/oauth2/v2.0"),
    "CLIENT_ID": mmc_env("MMC_CLIENT_ID", "sandbox-client"),
    "CLIENT_SECRET": mmc_env("MMC_CLIENT_SECRET", "sandbox-secret"),
    "ORGANISATION_ID": mmc_env("MMC_ORGANISATION_ID", "1001"),
    # The dialogue agent this site plays: its platform id and webhook secret.
    "AGENTS": {
        "support": {
            "ID": mmc_env("MMC_SUPPORT_AGENT_ID", "17"),
            "WEBHOOK_SECRETS": [mmc_env("MMC_SUPPORT_SECRET", "agent-17-secret")],
        },
    },
    "DEFAULT_AGENT": "support",
    "DEFAULT_CHANNEL_GROUP": os.environ.get("MMC_DEFAULT_CHANNEL_GROUP", "7"),
}

# A cache every process shares: the access token and the rate limit live here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
    }
}

# Celery, read by yourproject/celery.py (namespace "CELERY"). For RabbitMQ:
# CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// (see "Brokers").
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_DB_REUSE_MAX = 1000  # keep the database connection between tasks
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}  # Redis only
CELERY_BEAT_SCHEDULE = {
    "mmc-sweep-outbox": {"task": "django_mmc.sweep_outbox", "schedule": 60},
    "mmc-poll-statuses": {"task": "django_mmc.poll_statuses", "schedule": 300},
    "mmc-sync-directory": {"task": "django_mmc.sync_directory", "schedule": 3600},
    "mmc-delete-old-events": {"task": "django_mmc.delete_old_events", "schedule": 86400},
}

# yourproject/settings.py (the parts django_mmc needs)
import os

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

# Credentials come from the environment: never commit them.
MMC = {
    "CLIENT_ID": os.environ["MMC_CLIENT_ID"],
    "CLIENT_SECRET": os.environ["MMC_CLIENT_SECRET"],
    "ORGANISATION_ID": os.environ["MMC_ORGANISATION_ID"],
    # The dialogue agent this site plays: its platform id and webhook secret.
    "AGENTS": {
        "support": {"ID": "17", "WEBHOOK_SECRETS": [os.environ["MMC_SUPPORT_SECRET"]]},
    },
    "DEFAULT_AGENT": "support",
    "DEFAULT_CHANNEL_GROUP": "7",
}

# A cache every process shares: the access token and the rate limit live here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
    }
}

# Celery, read by yourproject/celery.py (namespace "CELERY").
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_DB_REUSE_MAX = 1000  # keep the database connection between tasks
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "mmc-sweep-outbox": {"task": "django_mmc.sweep_outbox", "schedule": 60},
    "mmc-poll-statuses": {"task": "django_mmc.poll_statuses", "schedule": 300},
    "mmc-sync-directory": {"task": "django_mmc.sync_directory", "schedule": 3600},
    "mmc-delete-old-events": {"task": "django_mmc.delete_old_events", "schedule": 86400},
}

"""Django settings of the benchmark's own processes (the runner, the Celery
workers, gunicorn and the memory probe). Everything that changes from run to
run comes from environment variables that the runner sets:

``MMC_BENCH_DB``     the PostgreSQL database the runner created for this run;
``MMC_BENCH_MMC``    the ``MMC`` setting (JSON), pointing at the run's sandbox;
``MMC_BENCH_QUEUE``  the Celery queue (one per run);
``MMC_BENCH_RUN``    the cache key prefix (one per run);
``MMC_BENCH_REDIS``  the Redis server (default ``redis://127.0.0.1:6379``);
``MMC_BENCH_DB_REUSE_MAX``  ``CELERY_DB_REUSE_MAX`` for the workers (default 1000, as
                     the docs recommend; ``0`` reconnects around every task);
``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD`` as libpq reads them.
"""

import json
import os

SECRET_KEY = "django_mmc-benchmark-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "benchmarks.urls"
WSGI_APPLICATION = "benchmarks.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # Without autodiscovery: the admin scenario imports django_mmc.admin
    # itself, so that a missing admin is reported instead of stopping the run.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_mmc",
]

# The stack a real site runs: the webhook view and the bare view both pay for it.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

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
STATIC_URL = "/static/"

DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("PGPORT", "5432"),
    "USER": os.environ.get("PGUSER", "postgres"),
    "PASSWORD": os.environ.get("PGPASSWORD", ""),
    "NAME": os.environ.get("MMC_BENCH_DB", "mmc_bench"),
    # Persistent connections, as a production site configures them.
    "CONN_MAX_AGE": 600,
    "CONN_HEALTH_CHECKS": False,  # Django's default
}}

REDIS_URL = os.environ.get("MMC_BENCH_REDIS", "redis://127.0.0.1:6379")
CACHES = {"default": {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": f"{REDIS_URL}/11",
    "KEY_PREFIX": os.environ.get("MMC_BENCH_RUN", "bench"),
}}

CELERY_BROKER_URL = f"{REDIS_URL}/12"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("MMC_BENCH_QUEUE", "mmc_bench")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

_mmc = os.environ.get("MMC_BENCH_MMC")
MMC = json.loads(_mmc) if _mmc else {}
MMC.setdefault("QUEUE", CELERY_TASK_DEFAULT_QUEUE)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_mmc": {"handlers": ["console"], "level": "WARNING"}},
}
# As the docs recommend: workers keep their database connection between tasks.
CELERY_DB_REUSE_MAX = int(os.environ.get("MMC_BENCH_DB_REUSE_MAX") or 1000) or None

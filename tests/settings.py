"""Django settings for django_mmc's own test suite.

The database is PostgreSQL unless DJANGO_MMC_TEST_DB=sqlite; the cache is
Redis, and so is the Celery broker unless DJANGO_MMC_TEST_BROKER=rabbitmq
(RabbitMQ on loopback, or DJANGO_MMC_TEST_AMQP_URL). A Celery worker started
by the tests uses these same settings, told by environment variables which
test database and which MMC configuration (the sandbox's) to use.
"""

import json
import os

from tests.helpers import SALES_AGENT_ID, SUPPORT_AGENT_ID, SUPPORT_GROUP_ID

SECRET_KEY = "django_mmc-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_mmc",
]

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

DB_KIND = os.environ.get("DJANGO_MMC_TEST_DB", "postgres")
if DB_KIND == "sqlite":
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_MMC_WORKER_DB") or ":memory:",
        "TEST": {"NAME": os.environ.get("DJANGO_MMC_SQLITE_FILE") or None},
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        # A worker started by the tests connects straight to the test database.
        "NAME": os.environ.get("DJANGO_MMC_WORKER_DB") or os.environ.get("PGDATABASE", "test"),
        "CONN_MAX_AGE": 0,
    }}
    # A second alias of the same database, for the tests of a site whose
    # router puts django_mmc's tables on a database of their own.
    DATABASES["mmc"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}

REDIS_URL = os.environ.get("DJANGO_MMC_TEST_REDIS", "redis://127.0.0.1:6379")
# Separate Redis databases let two runs of the suite share one Redis server.
CACHE_DB = os.environ.get("DJANGO_MMC_TEST_CACHE_DB", "13")
BROKER_DB = os.environ.get("DJANGO_MMC_TEST_BROKER_DB", "14")
CACHES = {"default": {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": f"{REDIS_URL}/{CACHE_DB}",
    "KEY_PREFIX": os.environ.get("DJANGO_MMC_TEST_RUN", "local"),
}}

#: Where the tests keep their own records (signals a worker sent): Redis,
#: whichever broker carries the tasks.
TEST_REDIS_URL = f"{REDIS_URL}/{BROKER_DB}"

BROKER_KIND = os.environ.get("DJANGO_MMC_TEST_BROKER", "redis")
if BROKER_KIND == "rabbitmq":
    CELERY_BROKER_URL = os.environ.get("DJANGO_MMC_TEST_AMQP_URL",
                                       "amqp://guest:guest@127.0.0.1:5672//")
else:
    CELERY_BROKER_URL = TEST_REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_DB_REUSE_MAX = 1000  # keep the worker's database connection between tasks
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("DJANGO_MMC_TEST_QUEUE", "django_mmc_tests")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

_mmc_from_env = os.environ.get("DJANGO_MMC_TEST_MMC")
MMC = json.loads(_mmc_from_env) if _mmc_from_env else {
    "CLIENT_ID": "sandbox-client",
    "CLIENT_SECRET": "sandbox-secret",
    "ORGANISATION_ID": "1001",
    "BASE_URL": "http://127.0.0.1:9",
    "OAUTH_BASE_URL": "http://127.0.0.1:9/oauth2/v2.0",
    "AGENTS": {
        "support": {"ID": SUPPORT_AGENT_ID, "WEBHOOK_SECRETS": ["agent-17-secret"]},
        "sales": {"ID": SALES_AGENT_ID, "WEBHOOK_SECRETS": ["agent-18-secret"]},
    },
    "DEFAULT_AGENT": "support",
    "DEFAULT_CHANNEL_GROUP": SUPPORT_GROUP_ID,
}
MMC["QUEUE"] = CELERY_TASK_DEFAULT_QUEUE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_mmc": {"handlers": ["console"], "level": "INFO"}},
}

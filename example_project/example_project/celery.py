"""The example project's Celery app, with django_mmc's periodic tasks.

Run a worker and the scheduler next to the web server::

    celery -A example_project worker --pool threads --concurrency 4 -l info
    celery -A example_project beat -l info

``make demo`` starts both for you.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
# Every CELERY_* Django setting configures the app (CELERY_BROKER_URL...).
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds django_mmc.tasks (and any tasks.py of the project's apps).
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The outbox sweeper: sends anything stored but never handed to a worker
    # (a crash between the commit and the enqueue, the broker down...).
    "mmc-sweep-outbox": {"task": "django_mmc.sweep_outbox", "schedule": 30.0},
    # Status polling: the safety net for webhooks that never arrive.
    "mmc-poll-statuses": {"task": "django_mmc.poll_statuses", "schedule": 60.0},
    # Channel groups and templates, as edited on the platform.
    "mmc-sync-directory": {"task": "django_mmc.sync_directory", "schedule": 3600.0},
    # Processed webhook events older than MMC["WEBHOOK_EVENT_RETENTION_DAYS"].
    "mmc-delete-old-events": {"task": "django_mmc.delete_old_events", "schedule": 86400.0},
}

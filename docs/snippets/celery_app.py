# yourproject/celery.py
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yourproject.settings")

app = Celery("yourproject")
# Every CELERY_* Django setting configures this app.
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds django_mmc.tasks (and your own apps' tasks.py).
app.autodiscover_tasks()

# yourproject/__init__.py
# Load the Celery app whenever Django starts, so that web processes hand
# django_mmc's tasks to your broker.
from .celery import app as celery_app

__all__ = ("celery_app",)

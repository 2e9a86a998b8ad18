"""The django_mmc example project: a small shop that tells its customers
about their orders over WhatsApp and SMS.

Importing the Celery app here makes it the current app whenever Django
loads the settings, so ``django_mmc``'s tasks are sent through it (and its
broker) from the web process as well as from workers.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]

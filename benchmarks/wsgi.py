"""The WSGI application gunicorn serves in the webhook scenario."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

# As a project's package does: the tasks the views enqueue use this app's broker.
from benchmarks.celery_app import app as celery_app  # noqa: E402,F401

application = get_wsgi_application()

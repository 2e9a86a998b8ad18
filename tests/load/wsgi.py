"""The WSGI application the load test serves with gunicorn: the test
settings, with the suite's Celery app as the current app (as a host project
imports its own in its package ``__init__``)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from tests.celery_app import app as celery_app  # noqa: E402,F401

application = get_wsgi_application()

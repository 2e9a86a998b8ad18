"""The Celery app the test suite's worker processes run."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("django_mmc_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_mmc"])


@app.on_after_finalize.connect
def _record_signals(sender, **kwargs):
    # Only in the worker process started by the tests.
    if os.environ.get("DJANGO_MMC_WORKER_DB"):
        import django

        django.setup()
        from tests import signal_recorder

        signal_recorder.connect()

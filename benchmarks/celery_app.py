"""The Celery app of the benchmark's worker processes."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

app = Celery("django_mmc_benchmark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_mmc"])


@worker_ready.connect
def _say_ready(**kwargs):
    """Tell the runner the worker consumes (a file, so no log level is needed)."""
    ready_file = os.environ.get("MMC_BENCH_READY_FILE")
    if ready_file:
        Path(ready_file).touch()

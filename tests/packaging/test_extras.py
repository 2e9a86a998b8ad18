"""Each broker extra installs what a Celery worker on that broker needs: a
clean virtualenv, ``pip install ".[redis]"`` (or ``rabbitmq``) of the
checkout, a tiny project, and a real worker that runs one of django_mmc's
tasks through the real broker."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.packaging.helpers import ROOT, fresh_venv, packaging, pip_install

pytestmark = packaging

SETTINGS = '''
SECRET_KEY = "extras-test"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth",
                  "rest_framework", "django_mmc"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CELERY_BROKER_URL = {broker!r}
CELERY_TASK_DEFAULT_QUEUE = {queue!r}
MMC = {{
    "CLIENT_ID": "id", "CLIENT_SECRET": "secret", "ORGANISATION_ID": "1",
    "BASE_URL": "http://127.0.0.1:9", "OAUTH_BASE_URL": "http://127.0.0.1:9/oauth2/v2.0",
    "AGENTS": {{"support": {{"ID": "17", "WEBHOOK_SECRETS": ["s"]}}}},
    "QUEUE": {queue!r},
}}
'''

CELERY_APP = '''
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
app = Celery("extras")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
'''


def broker_url(extra: str) -> str:
    if extra == "redis":
        return settings.TEST_REDIS_URL
    return os.environ.get("DJANGO_MMC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.mark.parametrize("extra", ["redis", "rabbitmq"])
def test_the_extra_gives_a_worker_that_runs_tasks_on_its_broker(extra: str,
                                                                 tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, f"{ROOT}[{extra}]")

    project = tmp_path / "project"
    project.mkdir()
    queue = f"{os.environ.get('DJANGO_MMC_TEST_QUEUE', 'django_mmc_tests')}-extra-{extra}"
    (project / "settings.py").write_text(SETTINGS.format(broker=broker_url(extra), queue=queue))
    (project / "celery_app.py").write_text(CELERY_APP)
    # Only the installed copy of django_mmc, never the checkout's.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings", "PYTHONPATH": str(project)}

    def run(*code: str) -> str:
        result = subprocess.run([str(python), *code], cwd=project, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    where = run("-c", "import django_mmc; print(django_mmc.__file__)")
    assert str(tmp_path / "venv") in where, where
    run("-m", "django", "migrate", "--verbosity", "0")

    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [str(python), "-m", "celery", "-A", "celery_app", "worker", "-Q", queue, "-c", "1",
             "-P", "solo", "-l", "info", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"extras-{extra}-{os.getpid()}@%h"],
            cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_for_line(worker, log, " ready.", 60)
        run("-c", "from celery_app import app; "
                  "app.send_task('django_mmc.sweep_outbox', queue=" + repr(queue) + ")")
        wait_for_line(worker, log, "django_mmc.sweep_outbox[", 30, also="succeeded")
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")


def wait_for_line(worker: subprocess.Popen, log: Path, text: str, timeout: float,
                  also: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        if any(text in line and also in line for line in output.splitlines()):
            return
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}):\n{output[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} {also!r} within {timeout}s:\n"
                         f"{log.read_text(errors='replace')[-4000:]}")

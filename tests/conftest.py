"""Fixtures for django_mmc's own suite: the real parts.

* ``sandbox``: the MMC sandbox, a real HTTP server on loopback, with the MMC
  setting pointed at it. It is the ``mmc_sandbox`` fixture the package ships
  to its users (``django_mmc.sandbox.pytest_plugin``), with the suite's options.
* ``celery_worker``: a real ``celery worker`` process (prefork, 2 children)
  on the Redis broker, connected to the test database.
* ``mmc_stack``: both, plus Django's live server receiving the sandbox's
  signed webhooks over HTTP, and the directory synced.

A test that uses the database or the sandbox needs PostgreSQL and Redis (see
``needs_services``). When ``CI=true`` a missing service fails the run;
elsewhere the tests that need it are skipped with the reason. Pure tests
(no database, no cache, no broker) run without them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.celery_app import app as celery_app  # noqa: E402,F401 - makes it the current app

pytest_plugins = ["django_mmc.sandbox.pytest_plugin"]

ROOT = Path(__file__).resolve().parent.parent
WORKER_QUEUE = os.environ.get("DJANGO_MMC_TEST_QUEUE", "django_mmc_tests")

#: Fixtures that reach PostgreSQL or Redis: the database, and the sandbox
#: (the client keeps its token and rate-limit windows in the Redis cache).
SERVICE_FIXTURES = frozenset({
    "db", "transactional_db", "live_server", "sandbox", "celery_worker", "services",
})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the long variants (large chaos runs)")


def needs_services(item: pytest.Item) -> bool:
    """Whether a test reaches PostgreSQL or Redis: it uses the database (a
    fixture or the ``django_db`` marker), the sandbox, or is an integration
    test. Fixtures count with everything they depend on."""
    if item.get_closest_marker("django_db") or item.get_closest_marker("integration"):
        return True
    return not SERVICE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # First of all its fixtures, so a missing service skips the test
        # before anything tries to connect to it.
        if isinstance(item, pytest.Function) and needs_services(item):
            if "services" in item.fixturenames:
                item.fixturenames.remove("services")
            item.fixturenames.insert(0, "services")
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="long variant: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class SecretScan(logging.Handler):
    """Keeps every log record of the run, to check at the end that no secret
    (client secret, webhook secrets, access tokens) was ever logged."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is still scanned raw
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


SECRET_SCAN = SecretScan()


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(SECRET_SCAN)
    root.setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a configured secret or an issued token was logged, by
    this process or by a worker process the tests started."""
    from django.conf import settings

    from django_mmc.conf import MMCSettings

    secrets = set(MMCSettings(settings.MMC).secret_values())
    secrets |= {"sandbox-secret", "agent-17-secret", "agent-18-secret"}
    secrets |= set(ISSUED_TOKENS)
    texts = SECRET_SCAN.texts + [log.read_text(errors="replace") for log in WORKER_LOGS
                                 if log.exists()]
    leaks = [text[:200].replace(secret, "<SECRET>") for secret in secrets for text in texts
             if secret and secret in text]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write("\n")
    if leaks:
        if reporter:
            reporter.write_line(f"SECRET LEAK: {len(leaks)} log record(s) held a secret value, "
                                f"e.g.: {leaks[0]}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.write_line(f"secret scan: {len(texts)} log records, {len(secrets)} secret "
                            "values, no leak")


ISSUED_TOKENS: list[str] = []
WORKER_LOGS: list[Path] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    from django.conf import settings

    redis = urlsplit(settings.REDIS_URL)
    needed = [("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)]
    if getattr(settings, "BROKER_KIND", "redis") == "rabbitmq":
        needed.append(("RabbitMQ", "127.0.0.1", 5672))
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        needed.append(("PostgreSQL", settings.DATABASES["default"]["HOST"],
                       int(settings.DATABASES["default"]["PORT"])))
    missing = [name for name, host, port in needed if not _reachable(host, port)]
    if missing and os.environ.get("CI") == "true":
        pytest.exit(f"CI=true and {', '.join(missing)} cannot be reached: failing, not "
                    "skipping. `.ci/run` starts the services; see its output.", returncode=3)
    session.config._mmc_missing_services = missing  # type: ignore[attr-defined]


@pytest.fixture
def services(request: pytest.FixtureRequest) -> Iterator[None]:
    """PostgreSQL and Redis, reachable (or the test is skipped), with nothing
    left in them by the previous test: no cached token, rate-limit window,
    client or pending batch. Every test that ``needs_services`` gets it."""
    missing = getattr(request.config, "_mmc_missing_services", [])
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (start them, or run with CI=true to fail)")
    from django.core.cache import cache

    from django_mmc.client import reset_client
    from django_mmc.dispatch import forget_pending_batch

    cache.clear()
    reset_client()
    forget_pending_batch()
    yield
    reset_client()


# -- the sandbox ---------------------------------------------------------------


@pytest.fixture(scope="session")
def mmc_sandbox_options() -> dict[str, Any]:
    """Statuses move every 50 ms; no rate limit (the client's limiter has
    tests of its own that set one)."""
    return {"progress_interval": 0.05, "rate_limit": None}


@pytest.fixture(scope="session")
def mmc_sandbox_server(mmc_sandbox_server: Any) -> Iterator[Any]:
    """The plugin's session sandbox; the tokens it issued are scanned for in
    the logs at the end of the run."""
    yield mmc_sandbox_server
    ISSUED_TOKENS.extend(mmc_sandbox_server.platform.issued_tokens)


@pytest.fixture
def sandbox(mmc_sandbox: Any, settings: Any) -> Any:
    """The sandbox, fresh for this test, with ``settings.MMC`` pointed at it."""
    settings.MMC = mmc_settings_for(mmc_sandbox)
    return mmc_sandbox


def mmc_settings_for(sandbox: Any, **overrides: Any) -> dict[str, Any]:
    from django.conf import settings

    return sandbox.mmc_settings(
        QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE, RATE_LIMIT=None, POLL_AFTER=1,
        RETRY_BACKOFF=1, RETRY_BACKOFF_MAX=2, RETRY_AFTER_MAX=5, OUTBOX_DELAY=2,
        SEND_LEASE=10, TIMEOUT=(2, 3), **overrides,
    )


# -- a real Celery worker ----------------------------------------------------------


class Worker:
    """A ``celery worker`` process that can be killed and restarted."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
             "-Q", WORKER_QUEUE, "-c", "2", "-P", "prefork", "-l", "info",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"mmc-test-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.output(offset)}")
            if " ready." in self.output(offset):
                return
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready in {timeout}s:\n{self.output(offset)}")

    def output(self, offset: int = 0) -> str:
        with self.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def kill_children(self) -> list[int]:
        """SIGKILL the pool's child processes (as the OOM killer would) while
        the main process lives on and replaces them; returns their pids."""
        if self.process is None:
            return []
        children = [int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()]
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def purge_queue() -> None:
    import redis
    from django.conf import settings

    from tests import broker

    broker.purge(WORKER_QUEUE)
    if broker.broker_kind() == "redis":  # tasks a killed worker had reserved
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        client.delete("unacked", "unacked_index")
        client.close()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: Any, django_db_blocker: Any, mmc_sandbox_server: Any
                  ) -> Iterator[Worker]:
    """One real worker process for the session, on the test database and
    the session's sandbox."""
    from django.conf import settings
    from django.db import connection

    purge_queue()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DJANGO_MMC_WORKER_DB=connection.settings_dict["NAME"],
        DJANGO_MMC_TEST_MMC=json.dumps(mmc_settings_for(mmc_sandbox_server)),
        PYTHONPATH=str(ROOT),
    )
    if settings.DB_KIND == "sqlite":
        pytest.skip("a worker process needs a database it can share: PostgreSQL")
    log = Path(tempfile.gettempdir()) / f"django_mmc_worker_{os.getpid()}.log"
    log.unlink(missing_ok=True)
    WORKER_LOGS.append(log)
    worker = Worker(env, log)
    worker.start()
    yield worker
    worker.stop()


class Stack:
    """The whole stack for one test, with a helper to wait for outcomes."""

    def __init__(self, sandbox: Any, worker: Worker, live_server_url: str) -> None:
        self.sandbox = sandbox
        self.worker = worker
        self.live_server_url = live_server_url

    def signals(self, name: str | None = None) -> list[dict[str, Any]]:
        """Signals the worker process sent during this test."""
        from tests import signal_recorder

        return [s for s in signal_recorder.recorded() if name is None or s["signal"] == name]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20,
                 message: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {message}\n"
                             f"worker log tail:\n{self.worker.output()[-3000:]}")


@pytest.fixture
def mmc_stack(transactional_db: Any, live_server: Any, sandbox: Any, celery_worker: Worker,
              settings: Any) -> Iterator[Stack]:
    """Sandbox + live server (receiving signed webhooks) + Celery worker,
    with the directory synced from the sandbox."""
    from django_mmc.directory import sync_directory

    if celery_worker.process is None or celery_worker.process.poll() is not None:
        celery_worker.start()
    for key, agent in settings.MMC["AGENTS"].items():
        sandbox.set_agent_endpoint(agent["ID"], f"{live_server.url}/mmc/webhooks/{key}/")
    sync_directory()
    from tests import signal_recorder

    signal_recorder.clear()
    yield Stack(sandbox, celery_worker, live_server.url)
    for agent in settings.MMC["AGENTS"].values():
        sandbox.set_agent_endpoint(agent["ID"], None)
    sandbox.wait_for_webhooks(timeout=5)
    quiesce()


def quiesce(timeout: float = 15) -> None:
    """Wait until the worker is done with this test's work, so the test
    database can be flushed (TRUNCATE) without deadlocking against it."""
    from django.db import connection

    from tests import broker

    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
            busy = cursor.fetchone()[0]
        if busy == 0 and broker.queue_length(WORKER_QUEUE) == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.3:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


@pytest.fixture
def directory(db: Any) -> dict[str, Any]:
    """Every channel group, channel and template of the sandbox's seed
    (``tests.helpers.SEED``), created locally (no platform call), for tests
    that only need rows: groups by lower-case name, templates by name."""
    from django_mmc.models import Channel, ChannelGroup, Template
    from tests.helpers import SEED

    rows: dict[str, Any] = {}
    for group in SEED["channelGroups"]:
        row = ChannelGroup.objects.create(platform_id=group["id"], name=group["name"])
        rows[group["name"].lower()] = row
        for channel in group["channels"]:
            Channel.objects.create(platform_id=channel["id"], group=row,
                                   channel_type=channel["channelType"], name=channel["name"])
    for template in SEED["templates"]:
        rows[template["name"]] = Template.objects.create(
            platform_id=template["id"], name=template["name"],
            description=template["description"], channel_types=template["channelTypes"],
            parameters=template["parameters"], preview=template["preview"])
    return rows


@pytest.fixture
def synced(sandbox: Any, db: Any) -> Any:
    """The sandbox, with the directory synced from it."""
    from django_mmc.directory import sync_directory

    sync_directory()
    return sandbox

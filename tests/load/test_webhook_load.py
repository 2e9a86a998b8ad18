"""The webhook endpoint under load on a real WSGI server.

gunicorn (gthread workers) serves ``tests.load.wsgi`` on loopback, on the
test database; 50 client threads with keep-alive sessions post signed events
for 20 seconds (or until a request budget runs out): mostly new events,
some deliberate repeats of recent ones, which often race their original.

Checked: no answer is a 5xx or a broken connection; every distinct event is
stored exactly once; for each event exactly one delivery is answered 202
(stored) and every other one 200 (a repeat, acknowledged). Throughput and
latency percentiles are printed, not asserted: they depend on the machine.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from django_mmc.models import WebhookEvent
from django_mmc.testing import build_event, signed_delivery
from tests.helpers import free_port, stored_ids

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "agent-17-secret"
CLIENTS = 50
DURATION = 20.0  # seconds
MAX_REQUESTS = 60_000  # whichever comes first
DUPLICATE_SHARE = 0.3
GUNICORN_WORKERS = 3
GUNICORN_THREADS = 4


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def gunicorn(transactional_db: Any) -> Iterator[Server]:
    """gunicorn on 127.0.0.1 and a free port, on this test's database, its
    processing tasks sent to a queue of its own that no worker consumes."""
    import redis
    from django.conf import settings
    from django.db import connection

    if settings.DB_KIND == "sqlite":
        pytest.skip("gunicorn's processes need a database they can share: PostgreSQL")
    port = free_port()
    queue = f"django_mmc_load_{uuid.uuid4().hex}"
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="tests.settings",
               DJANGO_MMC_WORKER_DB=connection.settings_dict["NAME"],
               DJANGO_MMC_TEST_QUEUE=queue, PYTHONPATH=str(ROOT))
    env.pop("DJANGO_MMC_TEST_MMC", None)  # tests/settings.py's agents and secrets
    log = Path(tempfile.gettempdir()) / f"django_mmc_gunicorn_{os.getpid()}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tests.load.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", str(GUNICORN_WORKERS),
         "--worker-class", "gthread", "--threads", str(GUNICORN_THREADS),
         "--keep-alive", "5", "--timeout", "30", "--graceful-timeout", "5",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/mmc/webhooks/support/"
    server = Server(url, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"gunicorn exited:\n{server.output()}"
            assert time.monotonic() < deadline, f"gunicorn not up in 30s:\n{server.output()}"
            try:
                if requests.get(url, timeout=2).status_code == 405:
                    break
            except requests.RequestException:  # refused, or accepted but not answering yet
                pass
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete(queue)
        broker.close()


class Load:
    """The shared state of the client threads."""

    def __init__(self, url: str, stop_at: float) -> None:
        self.url = url
        self.stop_at = stop_at
        self.ids = itertools.count()
        self.budget = itertools.count()
        self.lock = threading.Lock()
        self.recent: list[tuple[str, bytes, dict[str, str]]] = []
        self.results: list[tuple[str, int | None, float, bool]] = []
        self.errors: list[str] = []

    def delivery(self, rng: random.Random) -> tuple[str, bytes, dict[str, str], bool]:
        with self.lock:
            if self.recent and rng.random() < DUPLICATE_SHARE:
                event_id, body, headers = rng.choice(self.recent[-200:])
                return event_id, body, headers, True
        n = next(self.ids)
        event_id = f"evt_load_{n:06d}"
        event = build_event("notification.status", event_id=event_id, status="DELIVERED",
                            notification=str(100_000 + n))
        body, headers = signed_delivery(event, SECRET)
        with self.lock:
            self.recent.append((event_id, body, headers))
        return event_id, body, headers, False

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        results = []
        with requests.Session() as session:
            while time.monotonic() < self.stop_at and next(self.budget) < MAX_REQUESTS:
                event_id, body, headers, duplicate = self.delivery(rng)
                started = time.perf_counter()
                try:
                    response = session.post(self.url, data=body, headers=headers, timeout=15)
                    status = response.status_code
                except requests.RequestException as error:
                    status = None
                    with self.lock:
                        self.errors.append(f"{type(error).__name__}: {error}")
                results.append((event_id, status, time.perf_counter() - started, duplicate))
        with self.lock:
            self.results.extend(results)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_webhook_endpoint_under_load(gunicorn: Server) -> None:
    load = Load(gunicorn.url, time.monotonic() + DURATION)
    threads = [threading.Thread(target=load.client, args=(seed,), name=f"load-client-{seed}")
               for seed in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DURATION + 30)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"

    statuses = Counter(status for _, status, _, _ in load.results)
    latencies = [seconds for _, _, seconds, _ in load.results]
    duplicates = sum(1 for *_, duplicate in load.results if duplicate)
    print(f"\nwebhook load: {len(load.results)} requests from {CLIENTS} clients in "
          f"{elapsed:.1f}s = {len(load.results) / elapsed:.0f} req/s "
          f"(gunicorn {GUNICORN_WORKERS} gthread workers x {GUNICORN_THREADS} threads); "
          f"latency p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms; "
          f"{duplicates} deliberate repeats; answers {dict(sorted(statuses.items(), key=str))}")

    assert not load.errors, load.errors[:5]
    assert not [s for s in statuses if s is None or s >= 500], statuses
    assert set(statuses) <= {200, 202}, statuses
    assert duplicates, "no repeat was sent"

    by_event: dict[str, list[int]] = defaultdict(list)
    for event_id, status, _, _ in load.results:
        by_event[event_id].append(status)
    stored = stored_ids()
    assert stored == set(by_event), (len(stored), len(by_event))
    assert WebhookEvent.objects.count() == len(by_event)
    wrong = {e: s for e, s in by_event.items() if sorted(s) != [200] * (len(s) - 1) + [202]}
    assert not wrong, list(wrong.items())[:5]
    assert "agent-17-secret" not in gunicorn.output()
    assert json.loads(WebhookEvent.objects.order_by("?").first().body)["data"]["type"] == "events"

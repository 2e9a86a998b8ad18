from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


class BrokerQueue:
    """A Celery queue on the test broker that no worker consumes, so tasks
    enqueued by a committed transaction can be counted, never run."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def tasks(self) -> list[bytes]:
        return self.client.lrange(self.name, 0, -1)


@pytest.fixture
def private_queue(settings: Any) -> Iterator[BrokerQueue]:
    """Point ``MMC['QUEUE']`` at a queue of this test's own, removed afterwards
    (a shared test queue could hand our pks to another run's worker)."""
    import redis

    name = f"django_mmc_webhook_tests_{uuid.uuid4().hex}"
    mmc = copy.deepcopy(settings.MMC)
    mmc["QUEUE"] = name
    settings.MMC = mmc
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        yield BrokerQueue(client, name)
    finally:
        client.delete(name)
        client.close()

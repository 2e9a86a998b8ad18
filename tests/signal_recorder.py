"""Records django_mmc's signals in Redis, so a test can see what a worker
process sent (signals fire in the process that made the change)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from django_mmc import signals

KEY = "django_mmc_tests:signals"


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.TEST_REDIS_URL)


def _recorder(name: str):
    def record(sender: Any, **kwargs: Any) -> None:
        entry: dict[str, Any] = {"signal": name}
        for key, value in kwargs.items():
            if key == "signal":
                continue
            entry[key] = getattr(value, "pk", value)
        _redis().rpush(KEY, json.dumps(entry, default=str))

    return record


_RECEIVERS = {name: _recorder(name) for name in (
    "notification_status_changed", "message_status_changed", "message_received",
    "dialogue_opened", "dialogue_closed", "consent_changed")}


def connect() -> None:
    for name, receiver in _RECEIVERS.items():
        getattr(signals, name).connect(receiver, weak=False,
                                       dispatch_uid=f"django_mmc_tests_{name}")


def recorded() -> list[dict[str, Any]]:
    return [json.loads(item) for item in _redis().lrange(KEY, 0, -1)]


def clear() -> None:
    _redis().delete(KEY)

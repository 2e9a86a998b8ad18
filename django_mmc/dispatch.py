"""Where work is handed to Celery: the one place that decides queues.

Enqueueing happens after the surrounding transaction commits. Those callbacks
live only in memory, so the database row is the real outbox: if the process
dies before the callback runs, or the broker is down at that moment, the row
stays ``QUEUED`` and :func:`django_mmc.sending.sweep_outbox` enqueues it later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.db import transaction

from .conf import mmc_settings

logger = logging.getLogger("django_mmc.dispatch")


#: The priority of each kind of work when the caller gives none: people wait
#: on dialogues and on webhook processing.
DEFAULT_PRIORITY = {
    "send_notification": "normal",
    "open_dialogue": "high",
    "send_message": "high",
    "close_dialogue": "high",
    "process_event": "high",
}


def queue_for(priority: str | None) -> str | None:
    """The Celery queue for a priority: ``MMC['PRIORITY_QUEUES'][priority]``,
    else ``MMC['QUEUE']``, else the Celery app's default queue."""
    queues = mmc_settings.PRIORITY_QUEUES or {}
    return queues.get(priority) or mmc_settings.QUEUE or None


def enqueue(kind: str, pk: int, *, priority: str | None = None,
            countdown: float | None = None) -> bool:
    """Hand one row to a worker now. Returns ``False`` (and logs) when the
    broker refused; the outbox sweeper retries later."""
    from . import tasks

    task = getattr(tasks, kind)
    try:
        task.apply_async((pk,), queue=queue_for(priority or DEFAULT_PRIORITY.get(kind)),
                         countdown=countdown)
    except Exception:  # noqa: BLE001 - the row is the outbox; nothing is lost
        logger.warning("django_mmc: could not enqueue %s(%s); the outbox sweeper will retry",
                       kind, pk, exc_info=True)
        return False
    return True


def enqueue_many(kind: str, pks: Iterable[int], *, priority: str | None = None) -> int:
    return sum(enqueue(kind, pk, priority=priority) for pk in pks)


def enqueue_on_commit(kind: str, pk: int, *, priority: str | None = None) -> None:
    transaction.on_commit(partial(enqueue, kind, pk, priority=priority), robust=True)


def enqueue_many_on_commit(kind: str, pks: list[int], *, priority: str | None = None) -> None:
    transaction.on_commit(partial(enqueue_many, kind, pks, priority=priority), robust=True)


def on_commit(func, *args, **kwargs) -> None:
    """Run ``func`` after the current transaction commits (now, outside one);
    a failing callback is logged and does not stop the others."""
    transaction.on_commit(partial(func, *args, **kwargs), robust=True)

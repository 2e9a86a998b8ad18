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
    "process_pending_events": "high",
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


#: Campaign sends go to workers this many notifications per task.
BATCH_SIZE = 10


def enqueue_batches(pks: list[int], *, priority: str | None = None) -> int:
    """Hand a campaign's notifications to workers, ``BATCH_SIZE`` per task."""
    from . import tasks

    sent = 0
    for start in range(0, len(pks), BATCH_SIZE):
        batch = pks[start:start + BATCH_SIZE]
        try:
            tasks.send_notification_batch.apply_async(
                (batch,), queue=queue_for(priority or "low"))
            sent += len(batch)
        except Exception:  # noqa: BLE001 - the rows are the outbox
            logger.warning("django_mmc: could not enqueue a batch of %s notifications; the "
                           "outbox sweeper will retry", len(batch), exc_info=True)
    return sent


def enqueue_batches_on_commit(pks: list[int], *, priority: str | None = None) -> None:
    transaction.on_commit(partial(enqueue_batches, pks, priority=priority), robust=True)


def enqueue_many(kind: str, pks: Iterable[int], *, priority: str | None = None) -> int:
    return sum(enqueue(kind, pk, priority=priority) for pk in pks)


def enqueue_on_commit(kind: str, pk: int, *, priority: str | None = None) -> None:
    transaction.on_commit(partial(enqueue, kind, pk, priority=priority), robust=True)


def on_commit(func, *args, **kwargs) -> None:
    """Run ``func`` after the current transaction commits (now, outside one);
    a failing callback is logged and does not stop the others."""
    transaction.on_commit(partial(func, *args, **kwargs), robust=True)


#: Set while a batch of webhook events is waiting for a worker.
EVENTS_PENDING_KEY = "django_mmc:events-pending"
#: How long the flag may outlive a batch task that never ran (the outbox
#: sweeper covers longer outages).
EVENTS_PENDING_TTL = 10


def hand_over_event(pk: int) -> None:
    """Have a worker process stored webhook event ``pk``, in a batch.

    Under load the platform sends many events a second; one Celery message
    each would cost the request more than storing the event. So the first
    event sets a flag in the shared cache and enqueues one batch task; the
    events that arrive before that task starts only find the flag set. The
    task clears the flag before it looks for pending events, so none is
    missed. If the cache is down, each event gets its own task."""
    from django.core.cache import caches

    try:
        first = caches[mmc_settings.CACHE_ALIAS].add(EVENTS_PENDING_KEY, pk,
                                                     timeout=EVENTS_PENDING_TTL)
    except Exception:  # noqa: BLE001 - no cache: one task per event
        logger.warning("django_mmc: cache unreachable; one task per webhook event",
                       exc_info=True)
        enqueue("process_event", pk)
        return
    if first and not enqueue("process_pending_events", 0):
        caches[mmc_settings.CACHE_ALIAS].delete(EVENTS_PENDING_KEY)

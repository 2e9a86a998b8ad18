"""Where work is handed to Celery: the one place that decides queues.

Enqueueing happens after the surrounding transaction commits. Those callbacks
live only in memory, so the database row is the real outbox: if the process
dies before the callback runs, or the broker is down at that moment, the row
stays ``QUEUED`` and :func:`django_mmc.sending.sweep_outbox` enqueues it later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

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


def batches(pks: list[int], size: int) -> list[list[int]]:
    """``pks`` in as few batches of at most ``size`` as will do, of even
    sizes: 30 at 25 a task are two tasks of 15, so both run at once."""
    if not pks:
        return []
    count = -(-len(pks) // size)  # ceil
    step, extra = divmod(len(pks), count)
    out, start = [], 0
    for index in range(count):
        end = start + step + (1 if index < extra else 0)
        out.append(pks[start:end])
        start = end
    return out


def enqueue_batches(pks: list[int], *, priority: str | None = None) -> int:
    """Hand a campaign's notifications to workers, at most
    ``MMC['SEND_BATCH_SIZE']`` per task: a task costs the worker a few
    milliseconds of its own, which a batch shares out."""
    from . import tasks

    sent = 0
    for batch in batches(pks, mmc_settings.SEND_BATCH_SIZE):
        try:
            tasks.send_notification_batch.apply_async(
                (batch,), queue=queue_for(priority or "low"))
            sent += len(batch)
        except Exception:  # noqa: BLE001 - the rows are the outbox
            logger.warning("django_mmc: could not enqueue a batch of %s notifications; the "
                           "outbox sweeper will retry", len(batch), exc_info=True)
    return sent


def enqueue_batches_on_commit(pks: list[int], *, priority: str | None = None) -> None:
    on_commit(enqueue_batches, pks, priority=priority)


def enqueue_many(kind: str, pks: Iterable[int], *, priority: str | None = None) -> int:
    return sum(enqueue(kind, pk, priority=priority) for pk in pks)


def enqueue_on_commit(kind: str, pk: int, *, priority: str | None = None) -> None:
    on_commit(enqueue, kind, pk, priority=priority)


def _callback(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func`` bound to its arguments (a ``functools.partial``, so tests can
    see what was scheduled), with the ``__qualname__`` Django's robust
    callbacks log a failure under: a bare partial has none, and the log line
    itself would raise."""
    callback = partial(func, *args, **kwargs)
    callback.__qualname__ = getattr(func, "__qualname__", type(func).__qualname__)
    return callback


def on_commit(func, *args, using: str | None = None, **kwargs) -> None:
    """Run ``func`` after the current transaction on ``using`` commits (now,
    outside one); a failing callback is logged and does not stop the others."""
    transaction.on_commit(_callback(func, args, kwargs), using=using, robust=True)


#: Set while a batch of webhook events is waiting for a worker.
EVENTS_PENDING_KEY = "django_mmc:events-pending"
#: How long the flag may outlive a batch task that never ran (the outbox
#: sweeper covers longer outages).
EVENTS_PENDING_TTL = 10
#: A batch task keeps looking for new events until it has found none for this
#: long (seconds) ...
EVENTS_LINGER = 1.0
#: ... so a process that saw a batch pending less than this long ago need not
#: say so again: that batch will still see its event. Must stay below LINGER.
EVENTS_MEMO = 0.5

_last_seen_pending = -1e9


def hand_over_event(pk: int) -> None:
    """Have a worker process stored webhook event ``pk``, in a batch.

    Under load the platform sends many events a second; a Celery message, or
    even a cache round trip, for each would cost the request more than
    storing the event. So the first event sets a flag in the shared cache and
    enqueues one batch task; later events find the flag set, and a process
    that saw it within ``EVENTS_MEMO`` seconds does not even look. The batch
    task clears the flag before it looks for pending events and keeps looking
    until none has come for ``EVENTS_LINGER`` seconds, longer than the memo,
    so no event is missed. If the cache is down, each event gets its own task.
    """
    global _last_seen_pending
    from django.core.cache import caches

    now = time.monotonic()
    if now - _last_seen_pending < EVENTS_MEMO:
        return
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
        return
    _last_seen_pending = now


def forget_pending_batch() -> None:
    """Make this process look at the flag again on its next event (tests)."""
    global _last_seen_pending
    _last_seen_pending = -1e9

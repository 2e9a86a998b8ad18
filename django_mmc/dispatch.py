"""Where work is handed to Celery: the one place that decides queues.

Work is named by :class:`Work`, an enum whose values are the Celery task
names; :mod:`django_mmc.tasks` registers a task for each member when the app
is ready (the AppConfig imports it), so this module never imports the task
layer, and a misspelt kind of work fails where it is written, not inside an
``on_commit`` callback at night.

Enqueueing happens after the surrounding transaction commits. Those callbacks
live only in memory, so the database row is the real outbox: if the process
dies before the callback runs, or the broker is down at that moment, the row
stays ``QUEUED`` and the outbox sweeper
(:func:`django_mmc.workers.outbox.sweep_outbox`) enqueues it later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from enum import Enum
from functools import partial
from typing import Any

from django.db import router, transaction

from .conf import mmc_settings

logger = logging.getLogger("django_mmc.dispatch")


class Work(str, Enum):
    """Every kind of work django_mmc hands to a worker; the value is the
    Celery task's name, which stays stable across releases so tasks already
    in a broker's queue still find their task after an upgrade."""

    DELIVER_NOTIFICATION = "django_mmc.send_notification"
    DELIVER_NOTIFICATION_BATCH = "django_mmc.send_notification_batch"
    OPEN_DIALOGUE = "django_mmc.open_dialogue"
    DELIVER_MESSAGE = "django_mmc.send_message"
    CLOSE_DIALOGUE = "django_mmc.close_dialogue"
    PROCESS_EVENT = "django_mmc.process_event"
    PROCESS_PENDING_EVENTS = "django_mmc.process_pending_events"


#: The priority of each kind of work when the caller gives none: people wait
#: on dialogues and on webhook processing; campaigns wait on everything.
DEFAULT_PRIORITY: dict[Work, str] = {
    Work.DELIVER_NOTIFICATION: "normal",
    Work.DELIVER_NOTIFICATION_BATCH: "low",
    Work.OPEN_DIALOGUE: "high",
    Work.DELIVER_MESSAGE: "high",
    Work.CLOSE_DIALOGUE: "high",
    Work.PROCESS_EVENT: "high",
    Work.PROCESS_PENDING_EVENTS: "high",
}

#: The task registered for each kind of work (see :func:`register`).
_TASKS: dict[Work, Any] = {}


def register(work: Work, task: Any) -> Any:
    """Make ``task`` (anything with ``apply_async``) the one that does
    ``work``; returns it, so it can decorate."""
    _TASKS[Work(work)] = task
    return task


def task_for(work: Work) -> Any:
    """The task registered for ``work``. Raises ``LookupError`` when the task
    layer was never imported (``django_mmc`` missing from ``INSTALLED_APPS``)."""
    try:
        return _TASKS[work]
    except KeyError:
        raise LookupError(
            f"No task is registered for {work!r}: is 'django_mmc' in INSTALLED_APPS "
            "(its AppConfig imports django_mmc.tasks)?") from None


def queue_for(priority: str | None) -> str | None:
    """The Celery queue for a priority: ``MMC['PRIORITY_QUEUES'][priority]``,
    else ``MMC['QUEUE']``, else the Celery app's default queue."""
    queues = mmc_settings.PRIORITY_QUEUES or {}
    return queues.get(priority) or mmc_settings.QUEUE or None


def enqueue(work: Work, argument: Any, *, priority: str | None = None,
            countdown: float | None = None) -> bool:
    """Hand ``argument`` (a row's primary key, or a list of them for a
    batch) to a worker now. Returns ``False`` (and logs) when the broker
    refused; the outbox sweeper retries later."""
    task = task_for(work)
    try:
        task.apply_async((argument,), queue=queue_for(priority or DEFAULT_PRIORITY[work]),
                         countdown=countdown)
    except Exception:  # noqa: BLE001 - the row is the outbox; nothing is lost
        logger.warning("django_mmc: could not enqueue %s(%s); the outbox sweeper will retry",
                       work.value, argument, exc_info=True)
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
    return sum(len(batch) for batch in batches(pks, mmc_settings.SEND_BATCH_SIZE)
               if enqueue(Work.DELIVER_NOTIFICATION_BATCH, batch, priority=priority))


def enqueue_batches_on_commit(pks: list[int], *, priority: str | None = None) -> None:
    on_commit(enqueue_batches, pks, priority=priority)


def enqueue_many(work: Work, pks: Iterable[int], *, priority: str | None = None) -> int:
    return sum(enqueue(work, pk, priority=priority) for pk in pks)


def enqueue_on_commit(work: Work, pk: int, *, priority: str | None = None) -> None:
    on_commit(enqueue, Work(work), pk, priority=priority)


def _callback(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func`` bound to its arguments (a ``functools.partial``, so tests can
    see what was scheduled), with the ``__qualname__`` Django's robust
    callbacks log a failure under: a bare partial has none, and the log line
    itself would raise."""
    callback = partial(func, *args, **kwargs)
    callback.__qualname__ = getattr(func, "__qualname__", type(func).__qualname__)
    return callback


def database() -> str:
    """The database django_mmc's rows are written to (``router.db_for_write``):
    the transaction whose commit hands work over."""
    from django.apps import apps

    return router.db_for_write(apps.get_model("django_mmc", "Notification"))


def on_commit(func: Callable[..., Any], *args: Any, using: str | None = None,
              **kwargs: Any) -> None:
    """Run ``func`` after the current transaction on ``using`` (default:
    :func:`database`) commits (now, outside one); a failing callback is
    logged and does not stop the others."""
    transaction.on_commit(_callback(func, args, kwargs), using=using or database(),
                          robust=True)


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
        enqueue(Work.PROCESS_EVENT, pk)
        return
    if first and not enqueue(Work.PROCESS_PENDING_EVENTS, 0):
        caches[mmc_settings.CACHE_ALIAS].delete(EVENTS_PENDING_KEY)
        return
    _last_seen_pending = now


def forget_pending_batch() -> None:
    """Make this process look at the flag again on its next event (tests)."""
    global _last_seen_pending
    _last_seen_pending = -1e9

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


def enqueue(kind: str, pk: int, *, countdown: float | None = None) -> bool:
    """Hand one row to a worker now. Returns ``False`` (and logs) when the
    broker refused; the outbox sweeper retries later."""
    from . import tasks

    task = getattr(tasks, kind)
    try:
        task.apply_async((pk,), queue=mmc_settings.QUEUE or None, countdown=countdown)
    except Exception:  # noqa: BLE001 - the row is the outbox; nothing is lost
        logger.warning("django_mmc: could not enqueue %s(%s); the outbox sweeper will retry",
                       kind, pk, exc_info=True)
        return False
    return True


def enqueue_many(kind: str, pks: Iterable[int]) -> int:
    return sum(enqueue(kind, pk) for pk in pks)


def enqueue_on_commit(kind: str, pk: int) -> None:
    transaction.on_commit(partial(enqueue, kind, pk), robust=True)


def enqueue_many_on_commit(kind: str, pks: list[int]) -> None:
    transaction.on_commit(partial(enqueue_many, kind, pks), robust=True)


def on_commit(func, *args, **kwargs) -> None:
    """Run ``func`` after the current transaction commits (now, outside one);
    a failing callback is logged and does not stop the others."""
    transaction.on_commit(partial(func, *args, **kwargs), robust=True)

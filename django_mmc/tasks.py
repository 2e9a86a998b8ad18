"""Celery tasks: thin ``shared_task`` wrappers over the worker functions of
:mod:`django_mmc.workers`, :mod:`django_mmc.processing`,
:mod:`django_mmc.polling` and :mod:`django_mmc.directory`, so any host Celery
app picks them up. Each task registers itself with :mod:`django_mmc.dispatch`
for its :class:`~django_mmc.dispatch.Work`; the task names are the
``Work`` values and stay stable across releases.

Sending tasks acknowledge late and are rejected (redelivered) when their
worker dies, so a killed worker loses nothing; the claim and the idempotency
key make the redelivery safe. Run them with ``worker_prefetch_multiplier=1``.

A ready beat schedule::

    CELERY_BEAT_SCHEDULE = {
        "mmc-sweep-outbox": {"task": "django_mmc.sweep_outbox", "schedule": 60},
        "mmc-poll-statuses": {"task": "django_mmc.poll_statuses", "schedule": 300},
        "mmc-sync-directory": {"task": "django_mmc.sync_directory", "schedule": 3600},
        "mmc-delete-old-events": {"task": "django_mmc.delete_old_events", "schedule": 86400},
    }
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task

from . import directory, dispatch, polling, processing
from .dispatch import Work
from .models import Notification, WebhookEvent
from .policy import Result, RetryLater
from .workers import dialogues, notifications, outbox

_SENDING = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,  # the row counts attempts (MMC['MAX_RETRIES'])
    "ignore_result": True,
}

#: Delays (seconds) between tries of an event whose subject is not known yet;
#: after these the outbox sweeper keeps trying.
WAITING_EVENT_DELAYS = (0.5, 1, 2, 4, 8, 15, 30)


def _run(task: Any, func: Callable[..., Result], pk: int) -> str:
    try:
        result = func(pk, task_id=task.request.id)
    except RetryLater as later:
        raise task.retry(countdown=later.countdown) from None
    return result.outcome.value


@shared_task(name=Work.DELIVER_NOTIFICATION.value, **_SENDING)
def deliver_notification(self: Any, notification_id: int) -> str:
    """Send one notification (:func:`django_mmc.workers.notifications.deliver_notification`)."""
    return _run(self, notifications.deliver_notification, notification_id)


@shared_task(name=Work.DELIVER_NOTIFICATION_BATCH.value, **_SENDING)
def deliver_notification_batch(self: Any, notification_ids: list[int]) -> dict[str, int]:
    """Send a few notifications of a campaign in one task: Celery's own cost
    per task, and a claim and a load per row, are shared by the batch. A
    notification that must wait for a retry goes on as a task of its own; the
    others are not held up."""
    outcomes, retries = notifications.deliver_notification_batch(
        list(notification_ids), task_id=self.request.id)
    for pk, countdown in retries:
        priority = Notification.objects.filter(pk=pk).values_list("priority", flat=True).first()
        dispatch.enqueue(Work.DELIVER_NOTIFICATION, pk, priority=priority, countdown=countdown)
    return outcomes


@shared_task(name=Work.OPEN_DIALOGUE.value, **_SENDING)
def open_dialogue_on_platform(self: Any, dialogue_id: int) -> str:
    """Open one dialogue (:func:`django_mmc.workers.dialogues.open_on_platform`)."""
    return _run(self, dialogues.open_on_platform, dialogue_id)


@shared_task(name=Work.DELIVER_MESSAGE.value, **_SENDING)
def deliver_message(self: Any, message_id: int) -> str:
    """Send one dialogue message (:func:`django_mmc.workers.dialogues.deliver_message`)."""
    return _run(self, dialogues.deliver_message, message_id)


@shared_task(name=Work.CLOSE_DIALOGUE.value, **_SENDING)
def close_dialogue_on_platform(self: Any, dialogue_id: int) -> str:
    """Close one dialogue (:func:`django_mmc.workers.dialogues.close_on_platform`)."""
    return _run(self, dialogues.close_on_platform, dialogue_id)


@shared_task(name=Work.PROCESS_EVENT.value, bind=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=len(WAITING_EVENT_DELAYS),
             ignore_result=True)
def process_event(self: Any, event_id: int) -> str:
    """Apply one stored webhook event; retried while its subject is unknown,
    or while the database is locked (SQLite in development)."""
    state = processing.process_event(event_id)
    if state in (WebhookEvent.State.WAITING, WebhookEvent.State.PENDING) and (
            self.request.retries < len(WAITING_EVENT_DELAYS)):
        raise self.retry(countdown=WAITING_EVENT_DELAYS[self.request.retries])
    return state


@shared_task(name=Work.PROCESS_PENDING_EVENTS.value, acks_late=True,
             reject_on_worker_lost=True, ignore_result=True)
def process_pending_events(_unused: int = 0) -> dict[str, int]:
    """Apply every stored webhook event waiting for a worker, in batches."""
    return processing.process_pending()


@shared_task(name="django_mmc.poll_statuses", ignore_result=True)
def poll_statuses() -> dict[str, dict[str, int]]:
    """The safety net for lost webhooks: notifications, then open dialogues."""
    return {"notifications": polling.poll_notifications(),
            "dialogues": polling.poll_dialogues()}


@shared_task(name="django_mmc.sync_directory", ignore_result=True)
def sync_directory() -> dict[str, int]:
    return directory.sync_directory()


@shared_task(name="django_mmc.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    return outbox.sweep_outbox()


@shared_task(name="django_mmc.delete_old_events", ignore_result=True)
def delete_old_events(days: int | None = None) -> int:
    return processing.delete_old_events(days)


# Registered by the Work member, not by reading the task's name: that would
# make the task proxies load (and finalize) a Celery app at import time.
for _work, _task in (
    (Work.DELIVER_NOTIFICATION, deliver_notification),
    (Work.DELIVER_NOTIFICATION_BATCH, deliver_notification_batch),
    (Work.OPEN_DIALOGUE, open_dialogue_on_platform),
    (Work.DELIVER_MESSAGE, deliver_message),
    (Work.CLOSE_DIALOGUE, close_dialogue_on_platform),
    (Work.PROCESS_EVENT, process_event),
    (Work.PROCESS_PENDING_EVENTS, process_pending_events),
):
    dispatch.register(_work, _task)

"""Celery tasks: thin ``shared_task`` wrappers over the plain functions in
:mod:`django_mmc.sending`, :mod:`django_mmc.events`, :mod:`django_mmc.polling`
and :mod:`django_mmc.directory`, so any host Celery app picks them up.

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

from typing import Any

from celery import shared_task

from . import directory, dispatch, events, polling, sending
from .models import Notification, WebhookEvent

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


def _run(task: Any, func: Any, pk: int) -> str:
    try:
        outcome = func(pk, task_id=task.request.id)
    except sending.RetryLater as later:
        raise task.retry(countdown=later.countdown) from None
    return outcome.status


@shared_task(name="django_mmc.send_notification", **_SENDING)
def send_notification(self: Any, notification_id: int) -> str:
    """Send one notification (see :func:`django_mmc.sending.send_notification`)."""
    return _run(self, sending.send_notification, notification_id)


@shared_task(name="django_mmc.send_notification_batch", **_SENDING)
def send_notification_batch(self: Any, notification_ids: list[int]) -> dict[str, int]:
    """Send a few notifications of a campaign in one task: Celery's own cost
    per task, and a claim and a load per row, are shared by the batch. A
    notification that must wait for a retry goes on as a task of its own; the
    others are not held up."""
    outcomes, retries = sending.send_notification_batch(list(notification_ids),
                                                        task_id=self.request.id)
    for pk, countdown in retries:
        priority = Notification.objects.filter(pk=pk).values_list("priority", flat=True).first()
        dispatch.enqueue("send_notification", pk, priority=priority, countdown=countdown)
    return outcomes


@shared_task(name="django_mmc.open_dialogue", **_SENDING)
def open_dialogue(self: Any, dialogue_id: int) -> str:
    return _run(self, sending.open_dialogue, dialogue_id)


@shared_task(name="django_mmc.send_message", **_SENDING)
def send_message(self: Any, message_id: int) -> str:
    return _run(self, sending.send_message, message_id)


@shared_task(name="django_mmc.close_dialogue", **_SENDING)
def close_dialogue(self: Any, dialogue_id: int) -> str:
    return _run(self, sending.close_dialogue, dialogue_id)


@shared_task(name="django_mmc.process_event", bind=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=len(WAITING_EVENT_DELAYS),
             ignore_result=True)
def process_event(self: Any, event_id: int) -> str:
    """Apply one stored webhook event; retried while its subject is unknown."""
    state = events.process_event(event_id)
    if state == WebhookEvent.State.WAITING and self.request.retries < len(WAITING_EVENT_DELAYS):
        raise self.retry(countdown=WAITING_EVENT_DELAYS[self.request.retries])
    return state


@shared_task(name="django_mmc.process_pending_events", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True)
def process_pending_events(_unused: int = 0) -> dict[str, int]:
    """Apply every stored webhook event waiting for a worker, in batches."""
    return events.process_pending()


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
    return sending.sweep_outbox()


@shared_task(name="django_mmc.delete_old_events", ignore_result=True)
def delete_old_events(days: int | None = None) -> int:
    return events.delete_old_events(days)

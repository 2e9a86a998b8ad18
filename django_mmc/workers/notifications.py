"""Delivering notifications, one at a time or a campaign's batch.

Exactly once, in three parts:

* A worker *claims* a row with one conditional ``UPDATE`` (``QUEUED`` ->
  ``SENDING``), so two workers, or a task delivered twice, never both send it.
  A row stuck in ``SENDING`` (its worker died) can be claimed again by the
  redelivered task itself, or by anyone once its lease has run out.
* Every attempt sends the row's own ``Idempotency-Key``: when an attempt's
  outcome is unknown (timeout, crash after the platform answered), the next
  attempt gets the platform's first answer back instead of a second message.
* The result is written with another conditional ``UPDATE``.

A send costs three queries: claim, load, record.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from .. import transitions
from ..client import get_client
from ..models import Notification
from ..policy import Outcome, Result, RetryLater
from ..status import Status
from .attempts import record_failure


def not_expired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def deliver_notification(pk: int, task_id: str | None = None) -> Result:
    """Send notification ``pk`` if it still needs sending and has not expired."""
    if not transitions.claim(Notification, pk, task_id, extra=not_expired()):
        if transitions.expire_unsent(Notification.objects.filter(pk=pk)):
            return Result(Outcome.EXPIRED, "expired before it could be sent")
        return Result(Outcome.SKIPPED, "not waiting to be sent, or someone else is sending it")
    row = Notification.objects.select_related("recipient", "template", "channel_group").get(pk=pk)
    return deliver_claimed(row)


def deliver_notification_batch(pks: list[int], task_id: str
                               ) -> tuple[dict[str, int], list[tuple[int, float]]]:
    """Send a few notifications of a campaign: one claim and one load for all
    of them, then one request and one record each. Returns the outcomes
    counted, and ``(pk, countdown)`` for each that must retry."""
    outcomes: dict[str, int] = {}
    retries: list[tuple[int, float]] = []
    claimed = transitions.claim(Notification, list(pks), task_id, extra=not_expired())
    if claimed < len(pks):
        expired = transitions.expire_unsent(Notification.objects.filter(pk__in=pks))
        if expired:
            outcomes[Outcome.EXPIRED.value] = expired
    rows = list(Notification.objects.select_related("recipient", "template", "channel_group")
                .filter(pk__in=pks, status=Status.SENDING, send_task_id=task_id,
                        platform_id__isnull=True).order_by("pk")) if claimed else []
    for row in rows:
        try:
            outcome = deliver_claimed(row).outcome
        except RetryLater as later:
            retries.append((row.pk, later.countdown))
            outcome = Outcome.RETRYING
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
    return outcomes, retries


def deliver_claimed(row: Notification) -> Result:
    """One attempt at a notification this worker has claimed."""
    try:
        resource = get_client().create_notification(
            recipient=row.recipient.phone_number,
            template_id=row.template.platform_id,
            channel_group_id=row.channel_group.platform_id,
            channel_type=row.channel_type,
            context=row.context,
            idempotency_key=str(row.idempotency_key),
        )
    except Exception as error:  # noqa: BLE001 - every outcome is recorded on the row
        return record_failure(Notification, row, error)
    status = transitions.record_sent(Notification, row.pk, resource)
    return Result(Outcome.DONE, f"{status} {resource.id}")
